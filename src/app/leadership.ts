/**
 * Who acts: with leader election on, only the replica holding the Lease runs the monitor, the engine and
 * the follow-ups; the others stand by and take over when the lease is lost. Without it (the demo, the CLI)
 * the process acts as soon as it starts.
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config/config.js';
import type { Clock } from '../domain/clock.js';
import { LeaderElector } from '../k8s/leader.js';
import type { Logger } from '../log/logger.js';
import { componentLogger } from '../log/logger.js';
import type { Monitor } from '../monitor/monitor.js';
import type { RemediationEngine } from '../remediate/engine.js';
import type { RemediationServices } from '../remediate/services.js';

/**
 * Unique per process: the pod name (or the host name outside Kubernetes) plus a random suffix, so that a
 * restarted container never renews its predecessor's lease as if it were its own.
 */
export function leaderIdentity(config: Config): string {
  return `${config.kube.podName ?? hostname()}-${randomBytes(3).toString('hex')}`;
}

export function createLeaderElector(
  config: Config,
  kc: KubeConfig,
  logger: Logger,
  clock: Clock,
): LeaderElector {
  return new LeaderElector({
    kc,
    namespace: config.leader.namespace,
    leaseName: config.leader.leaseName,
    identity: leaderIdentity(config),
    leaseDurationMs: config.leader.leaseDurationSeconds * 1000,
    renewEveryMs: config.leader.renewSeconds * 1000,
    retryEveryMs: Math.min(2000, config.leader.renewSeconds * 1000),
    logger: componentLogger(logger, 'leader'),
    clock,
  });
}

/** The work only the acting replica does; start and stop are idempotent. */
export interface Acting {
  start(): Promise<void>;
  stop(why: string): Promise<void>;
}

/** The acting role, which more work can join (the fleet publisher, the leader's request worker). */
export interface ActingRole extends Acting {
  /** True between start and stop. */
  isActing(): boolean;
  /** Starts and stops `task` with the role (at once when the role is already acting). */
  add(task: Acting): void;
}

export function actingRole(deps: {
  engine: RemediationEngine;
  services: RemediationServices;
  monitor: Monitor;
  logger: Logger;
}): ActingRole {
  const { engine, services, monitor, logger } = deps;
  let acting = false;
  const tasks: Acting[] = [];
  // Start and stop take turns: a lease lost and won back while the stop still waits (a Slack post in flight)
  // must not have that stop end the tasks the new start found still running, and left them stopped.
  let turn: Promise<void> = Promise.resolve();
  const inTurn = (step: () => Promise<void>): Promise<void> => {
    const next = turn.then(step);
    turn = next.catch(() => undefined);
    return next;
  };
  return {
    isActing: () => acting,
    add(task) {
      tasks.push(task);
      if (acting) task.start().catch((err) => logger.error({ err }, 'starting an acting task failed'));
    },
    start: () =>
      inTurn(async () => {
        if (acting) return;
        acting = true;
        const resumed = await engine.start();
        if (resumed.length > 0) logger.info({ incidents: resumed }, 'resumed unfinished remediations');
        const followed = await services.resumeFollowUps();
        if (followed.length > 0)
          logger.info({ incidents: followed }, 'followed up escalations left by a stop');
        const watched = services.resumeDeferrals();
        if (watched.length > 0) logger.info({ incidents: watched }, 'watching EKS node auto repair again');
        monitor.start();
        for (const task of tasks) await task.start();
      }),
    // Losing the lease or stopping aborts the runs in progress at once (a drain stops evicting, every wait
    // ends); their `started` rows stay, and the next leader resumes them from the journal. The runs wind
    // down on their own (stop() waits for them, bounded); a lease won back meanwhile resumes them once they
    // have.
    stop(why) {
      // The runs in progress stop at once, even while a start still takes its turn.
      if (acting) void engine.abort(why);
      return inTurn(async () => {
        if (!acting) return;
        acting = false;
        void engine.abort(why);
        await monitor.stop();
        // A standby does not follow EKS's repairs: the next leader resumes them from their rows.
        await services.stopWatching();
        // Last: a task winding down (a Slack post in flight) delays neither the abort nor the rest.
        for (const task of tasks) await task.stop(why);
      });
    },
  };
}

/** Acts while holding the lease and stands by otherwise; resolves after the first election round. */
export async function followLeadership(
  leader: LeaderElector,
  acting: Acting,
  leaseName: string,
  logger: Logger,
): Promise<void> {
  leader.onChange((isNow) => {
    logger.info({ leader: isNow }, isNow ? 'became the leader' : 'lost the lease; standing by');
    (isNow ? acting.start() : acting.stop('lost the lease')).catch((err) =>
      logger.error({ err }, 'leadership change failed'),
    );
  });
  await leader.start();
  if (!leader.isLeader()) {
    logger.info({ lease: leaseName }, 'standing by: another replica holds the lease');
  }
}
