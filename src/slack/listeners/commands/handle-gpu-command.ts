/**
 * `/gpu …` handling shared by the Bolt listener and the demo console: text in, an ephemeral answer out.
 * Authorization is decided here, server-side, before any destructive call; read-only commands are open to all.
 */
import type { Logger } from 'pino';
import type { Authorizer } from '../../authz.js';
import type { SlackMessage } from '../../blocks/alert.js';
import { diagTable } from '../../blocks/diag-table.js';
import { section } from '../../blocks/kit.js';
import { SlackLimits, truncate } from '../../blocks/limits.js';
import {
  commandConfirmActionIds,
  commandErrorMessage,
  confirmCommandMessage,
  exclusionsMessage,
  fleetStatusMessage,
  helpMessage,
  historyMessage,
  nodeStatusMessage,
} from '../../blocks/status.js';
import type { ChatDiagResult, ChatPort, ChatResult } from '../../chat-port.js';
import { slackActor } from '../../chat-port.js';
import {
  type GpuCommand,
  isCommandError,
  isDestructive,
  type NodeActionKind,
  parseCommandButtonValue,
  parseGpuCommand,
} from '../../commands/parse.js';
import { escapeMrkdwn, inlineCode } from '../../format.js';

export interface CommandDeps {
  chat: ChatPort;
  authz: Authorizer;
  logger?: Logger;
  /**
   * This process's cluster: a command naming another one (`<cluster>/<node>`) is refused here, and a
   * confirmation's buttons carry it (the click may reach a process of another cluster).
   */
  cluster?: string;
}

export type NodeActionCommand = Extract<GpuCommand, { kind: NodeActionKind }>;

/** A file the answer posts in the channel (`/gpu report`), with what to say when files cannot be posted. */
export interface ReplyFile {
  filename: string;
  title: string;
  content: string;
  /** The message posted with the file. */
  comment: string;
  /** The answer instead of the file (no files:write, the bot not in the channel, a DM). */
  fallback: string;
}

export interface CommandReply {
  message: SlackMessage;
  /** Post this file to the command's channel; `message` is then the ephemeral answer once it is posted. */
  file?: ReplyFile;
  /** Set when the answer asks for confirmation of this command (Confirm / Cancel). */
  confirm?: NodeActionCommand;
}

/** The one answer a user ever sees for an unexpected failure: never a stack trace. */
export const genericFailure: SlackMessage = {
  text: '⚠️ Something went wrong handling that. It has been logged; please try again.',
  blocks: [section('⚠️ Something went wrong handling that. It has been logged; please try again.')],
};

export function textMessage(text: string): SlackMessage {
  return { text, blocks: [section(text)] };
}

/** A diagnostic's answer: the verdict in words and DCGM's table (test, GPU, result, failure text). */
export function diagMessage(result: ChatDiagResult): SlackMessage {
  if (!result.ok) return resultMessage(result);
  const icon = { pass: '✅', warn: '⚠️', fail: '❌', unavailable: 'ℹ️', error: '❌' }[result.verdict];
  const table = diagTable(result.results, result.nodeWide ?? []);
  const text = `${icon} ${escapeMrkdwn(result.message)}${table ? `\n${table}` : ''}`;
  return {
    text: truncate(text, SlackLimits.messageText),
    blocks: [section(truncate(text, SlackLimits.sectionText))],
  };
}

/** A service answer as an ephemeral message. */
export function resultMessage(result: ChatResult): SlackMessage {
  const icon = result.ok ? (result.dryRun ? '🧪' : '✅') : result.code === 'denied' ? '⛔' : '⚠️';
  return textMessage(`${icon} ${escapeMrkdwn(result.message)}`);
}

export function deniedMessage(what: string): SlackMessage {
  return textMessage(
    `⛔ You are not allowed to ${what}. Ask a gpu-medic admin (SLACK_ADMIN_USERS / SLACK_ADMIN_GROUP).`,
  );
}

/** Refusals decided here never reach the services, so they are audited here. */
export async function auditDenial(
  deps: CommandDeps,
  userId: string,
  action: string,
  ctx: { node?: string; incidentId?: string },
): Promise<void> {
  try {
    await deps.chat.audit({
      at: deps.chat.now(),
      actor: slackActor(userId),
      action,
      ...(ctx.node !== undefined ? { node: ctx.node } : {}),
      ...(ctx.incidentId !== undefined ? { incidentId: ctx.incidentId } : {}),
      result: 'denied',
      details: { reason: 'not an admin' },
    });
  } catch (error) {
    deps.logger?.error({ err: error, action, userId }, 'audit of a denial failed');
  }
}

function unknownNode(node: string): SlackMessage {
  return textMessage(
    `⚠️ No node named ${inlineCode(node)} in this cluster. \`/gpu status\` lists the GPU nodes with problems; \`kubectl get nodes\` lists them all.`,
  );
}

/** The cluster the command names when it is not this process's (or when this process has none). */
function otherCluster(cmd: GpuCommand, self: string | undefined): string | undefined {
  const named = 'cluster' in cmd ? cmd.cluster : undefined;
  return named !== undefined && named !== self ? named : undefined;
}

function otherClusterMessage(cluster: string, self: string | undefined): SlackMessage {
  return textMessage(
    `⚠️ ${inlineCode(cluster)} is not this cluster${self ? ` (${inlineCode(self)})` : ''}: nothing was done.`,
  );
}

/**
 * `/gpu status <cluster>` for this cluster is its summary; a node command is this cluster's (its
 * confirmation buttons say so).
 */
function stampCluster(cmd: GpuCommand, self: string | undefined): GpuCommand {
  if (cmd.kind === 'status' && cmd.node === undefined && cmd.cluster !== undefined) return { kind: 'status' };
  if (self === undefined || !('node' in cmd) || cmd.node === undefined) return cmd;
  return { ...cmd, cluster: self };
}

function nodeOf(cmd: GpuCommand): string | undefined {
  return 'node' in cmd ? cmd.node : undefined;
}

/** `/gpu <text>` from `userId`. Never throws: unexpected errors are logged and answered generically. */
export async function handleGpuCommand(
  text: string,
  userId: string,
  deps: CommandDeps,
): Promise<CommandReply> {
  try {
    return await answer(text, userId, deps);
  } catch (error) {
    deps.logger?.error({ err: error, userId, text: String(text).slice(0, 200) }, 'gpu command failed');
    return { message: genericFailure };
  }
}

async function answer(text: string, userId: string, deps: CommandDeps): Promise<CommandReply> {
  const parsed = parseGpuCommand(text);
  if (isCommandError(parsed)) return { message: commandErrorMessage(parsed) };
  const elsewhere = otherCluster(parsed, deps.cluster);
  if (elsewhere !== undefined) return { message: otherClusterMessage(elsewhere, deps.cluster) };
  const cmd = stampCluster(parsed, deps.cluster);
  const { chat } = deps;
  const actor = slackActor(userId);

  if (isDestructive(cmd) && !(await deps.authz.isAdmin(userId))) {
    const node = nodeOf(cmd);
    await auditDenial(deps, userId, `command.${cmd.kind}`, node !== undefined ? { node } : {});
    deps.logger?.info({ userId, command: cmd.kind, node }, 'slack command denied');
    return { message: deniedMessage(`run \`/gpu ${cmd.kind}\``) };
  }

  switch (cmd.kind) {
    case 'help':
      return { message: helpMessage() };
    case 'status': {
      if (cmd.node === undefined) return { message: fleetStatusMessage(await chat.fleetSummary()) };
      const detail = await chat.nodeDetail(cmd.node);
      return { message: detail ? nodeStatusMessage(detail) : unknownNode(cmd.node) };
    }
    case 'exclusions':
      return { message: exclusionsMessage(await chat.exclusions(), chat.now()) };
    case 'history': {
      const entries = await chat.history(cmd.node);
      return { message: entries ? historyMessage(cmd.node, entries) : unknownNode(cmd.node) };
    }
    case 'report': {
      const report = await chat.repairReport(cmd.days);
      if (report.repairs === 0) return { message: textMessage(escapeMrkdwn(report.summary)) };
      return {
        message: textMessage(
          `📎 Posted the repair report (${report.repairs} repair${report.repairs === 1 ? '' : 's'}, last ${cmd.days} days) as ${inlineCode(report.filename)}.`,
        ),
        file: {
          filename: report.filename,
          title: `GPU repairs, last ${cmd.days} days`,
          content: report.csv,
          comment: `GPU repair records for the last ${cmd.days} days: one row per GPU and repair (RMA evidence).`,
          fallback: report.summary,
        },
      };
    }
    case 'exclude': {
      const result = await chat.exclude(
        cmd.node,
        { until: chat.now() + cmd.durationMs, reason: cmd.reason ?? 'excluded from Slack' },
        actor,
      );
      return { message: resultMessage(result) };
    }
    case 'unexclude':
      return { message: resultMessage(await chat.unexclude(cmd.node, actor)) };
    case 'pause':
      return { message: resultMessage(await chat.pause(actor, cmd.reason ?? 'paused from Slack')) };
    case 'resume':
      return { message: resultMessage(await chat.resume(actor)) };
    case 'reboot': {
      // Said at once, not after a confirmation the services would then refuse (EKS Auto Mode nodes).
      const why = (await chat.nodeDetail(cmd.node))?.rebootUnavailable;
      if (why) return { message: textMessage(`🚫 ${escapeMrkdwn(why)}`) };
      return { message: confirmCommandMessage(cmd), confirm: cmd };
    }
    case 'cordon':
    case 'uncordon':
    case 'reset':
    case 'replace':
      return { message: confirmCommandMessage(cmd), confirm: cmd };
    case 'diag':
      return { message: diagMessage(await chat.runDiagnostics(cmd.node, cmd.level, actor)) };
    default: {
      const never: never = cmd;
      return { message: textMessage(`Unknown command ${escapeMrkdwn(String(never))}`) };
    }
  }
}

/** Runs a confirmed `/gpu cordon|uncordon|reboot|replace`, re-checking authorization (the click is a new request). */
export async function runConfirmedCommand(
  cmd: NodeActionCommand,
  userId: string,
  deps: CommandDeps,
): Promise<SlackMessage> {
  try {
    if (!(await deps.authz.isAdmin(userId))) {
      await auditDenial(deps, userId, `command.${cmd.kind}`, { node: cmd.node });
      return deniedMessage(`${cmd.kind} nodes`);
    }
    const result = await deps.chat.requestManual(
      cmd.kind,
      cmd.node,
      slackActor(userId),
      cmd.reason ?? `/gpu ${cmd.kind} from Slack`,
      ...(cmd.gpu !== undefined ? [{ gpu: cmd.gpu }] : []),
    );
    return resultMessage(result);
  } catch (error) {
    deps.logger?.error({ err: error, userId, command: cmd.kind }, 'confirmed command failed');
    return genericFailure;
  }
}

/** A click on the confirmation's Confirm or Cancel button. Never throws. */
export async function handleConfirmClick(
  actionId: string,
  value: unknown,
  userId: string,
  deps: CommandDeps,
): Promise<SlackMessage> {
  const cmd = parseCommandButtonValue(value);
  if ('error' in cmd) {
    deps.logger?.warn({ userId, error: cmd.error }, 'malformed confirmation button');
    return textMessage('⚠️ That button is not valid any more. Run the command again.');
  }
  if (actionId === commandConfirmActionIds.cancel) {
    return textMessage(`Cancelled: nothing was done to ${inlineCode(cmd.node)}.`);
  }
  return runConfirmedCommand(cmd, userId, deps);
}
