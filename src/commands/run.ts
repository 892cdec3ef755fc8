import { createApp } from '../app/app.js';
import { createLogger } from '../log/logger.js';
import { configOrExit } from './load-config.js';

/**
 * `gpu-medic run`: the production process. Config, store, leader election, monitor, engine, notification
 * fan-out and the Slack app in one process; SIGTERM stops taking work, lets the current step persist and
 * closes the database.
 */
export async function main(_argv: string[]): Promise<number> {
  const config = configOrExit();
  const logger = createLogger({ level: config.log.level });
  const app = await createApp(config, { logger, leaderElection: true, serve: true });
  await app.start();
  logger.info(
    { cluster: config.clusterName, dryRun: config.dryRun, slack: config.slack.mode },
    'gpu-medic running',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  logger.info('shutting down: no new work; the current step is persisted');
  await app.stop();
  // Everything is persisted and closed. A Socket Mode client that never connected keeps retrying
  // apps.connections.open on its own timers, which Bolt's stop() does not cancel: without this the
  // process would ignore SIGTERM until the orchestrator kills it.
  setTimeout(() => {
    logger.warn('handles still open after shutdown; exiting');
    process.exit(0);
  }, 2000).unref();
  return 0;
}
