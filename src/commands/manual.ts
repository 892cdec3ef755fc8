import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { createRuntime } from '../app/runtime.js';
import type { ServiceResult } from '../domain/service-result.js';
import { createLogger } from '../log/logger.js';
import { parseDuration } from '../slack/commands/parse.js';
import { serviceText } from '../slack/service-text.js';
import { CliError } from './cli-error.js';
import { configOrExit } from './load-config.js';

/**
 * `gpu-medic cordon|uncordon|reset|reboot|replace|exclude|unexclude NODE [--reason …] [--for 2h] [--gpu N]`: the same
 * services, checks, audit trail and DRY_RUN as the monitor and Slack. Waits for the remediation to end.
 */
export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { reason: { type: 'string' }, for: { type: 'string' }, gpu: { type: 'string' } },
    allowPositionals: true,
  });
  const node = positionals[0];
  if (!node) throw new CliError(`usage: gpu-medic ${verb} NODE [--reason TEXT]`, 2);
  const config = configOrExit();
  const logger = createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level });
  const actor = `cli:${process.env.USER ?? userInfo().username}`;
  const reason = values.reason ?? `manual ${verb} from the CLI`;
  const rt = await createRuntime(config, { logger });
  rt.bus.subscribe((e) => console.log(`  ${e.step}${e.dryRun ? ' (dry run)' : ''} → ${e.state}`));
  try {
    await rt.sensing.start();
    let result: ServiceResult;
    switch (verb) {
      case 'exclude': {
        const ms = values.for ? parseDuration(values.for) : undefined;
        if (values.for && ms === undefined)
          throw new CliError(`--for: cannot read '${values.for}' (try 2h, 30m, 1d)`, 2);
        // Without --for the services apply the default every surface shares (24 h).
        result = await rt.services.exclude(
          node,
          { until: ms ? rt.clock.now() + ms : undefined, reason },
          actor,
        );
        break;
      }
      case 'unexclude':
        result = await rt.services.unexclude(node, actor);
        break;
      case 'reset': {
        const gpu = values.gpu === undefined ? undefined : Number(values.gpu);
        if (gpu !== undefined && !(Number.isInteger(gpu) && gpu >= 0 && gpu <= 99))
          throw new CliError(`--gpu: '${values.gpu}' is not a GPU index (0, 1, … 7)`, 2);
        result = await rt.services.requestManual(
          'reset',
          node,
          actor,
          reason,
          gpu !== undefined ? { gpu } : {},
        );
        if (result.ok) await rt.engine.whenIdle();
        break;
      }
      case 'cordon':
      case 'uncordon':
      case 'reboot':
      case 'replace':
        result = await rt.services.requestManual(verb, node, actor, reason);
        if (result.ok) await rt.engine.whenIdle();
        break;
      default:
        throw new CliError(`unknown action '${verb}'`, 2);
    }
    console.log(serviceText(result));
    return result.ok ? 0 : 1;
  } finally {
    await rt.stop();
  }
}
