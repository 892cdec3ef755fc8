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
  // Outages are counted by the store, so one shorter than a tick is not missed.
  let handled = deps.store.outages();
  let down = false;
  const timer = setInterval(() => {
    if (!deps.store.available()) {
      if (!down)
        deps.logger.error('the database is unavailable: no remediation step starts until it is back');
      down = true;
      return;
    }
    const outages = deps.store.outages();
    if (outages === handled) return;
    down = false;
    deps.logger.info({ outages }, 'the database is back');
    if (!deps.isActing()) {
      handled = outages;
      return;
    }
    try {
      const resumed = deps.engine.start();
      handled = outages;
      if (resumed.length > 0)
        deps.logger.info({ incidents: resumed }, 'resumed remediations the outage interrupted');
    } catch (err) {
      // Gone again already: the next tick tries again.
      deps.logger.warn({ err }, 'could not resume remediations yet');
    }
  }, deps.everyMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}
