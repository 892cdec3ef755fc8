import type { ChatSink } from '../chat-port.js';
import type { CommandDeps } from './commands/handle-gpu-command.js';

/** What every listener gets: the core port, the authorizer, and where root-message updates go. */
export interface ListenerDeps extends CommandDeps {
  /** Alert root updates after a click go through the same outbox as everything else. */
  sink?: ChatSink;
}
