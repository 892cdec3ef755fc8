/**
 * A database that went away and came back: the remediation runs it interrupted (their next journal write
 * failed, so they stopped where their rows say) are resumed from the journal, by the acting replica only.
 * SQLite is always available, so with it this never fires.
 */
import type { Logger } from 'pino';
import type { RemediationEngine } from '../remediate/engine.js';
import type { Store } from '../store/index.js';

export function resumeWhenStoreReturns(deps: {
  store: Pick<Store, 'available' | 'outages'>;
  engine: Pick<RemediationEngine, 'start'>;
  isActing: () => boolean;
  logger: Logger;
  everyMs?: number;
}): () => void {
  let was = deps.store.available();
  const timer = setInterval(() => {
    const now = deps.store.available();
    if (now === was) return;
    was = now;
    if (!now) {
      deps.logger.error('the database is unavailable: no remediation step starts until it is back');
      return;
    }
    deps.logger.info('the database is back');
    if (!deps.isActing()) return;
    try {
      const resumed = deps.engine.start();
      if (resumed.length > 0)
        deps.logger.info({ incidents: resumed }, 'resumed remediations the outage interrupted');
    } catch (err) {
      // Gone again already: the next return tries again.
      was = false;
      deps.logger.warn({ err }, 'could not resume remediations yet');
    }
  }, deps.everyMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
