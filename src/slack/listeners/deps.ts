import type { FleetContext } from '../../fleet/ports.js';
import type { ChatSink } from '../chat-port.js';
import type { CommandDeps } from './commands/handle-gpu-command.js';

/** What every listener gets: the core port, the authorizer, and where root-message updates go. */
export interface ListenerDeps extends CommandDeps {
  /** Alert root updates after a click go through the same outbox as everything else. */
  sink?: ChatSink;
  /**
   * This process in its fleet: set when it may not act on every request it receives (leader election
   * on, or other clusters sharing the Slack app); such requests go to their cluster's leader.
   */
  fleet?: FleetContext;
}
