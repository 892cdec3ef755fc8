/**
 * The `gpu-medic` command. Each sub-command lives in commands/ and is loaded on demand, so
 * `gpu-medic --help` starts in milliseconds and a broken optional piece never breaks the others.
 */
import { CliError } from './commands/cli-error.js';

interface CommandSpec {
  summary: string;
  usage: string;
  load: () => Promise<{ main: (argv: string[]) => Promise<number> }>;
  /**
   * Needs the simulator, the benchmarks or the evaluation corpus code, which the production build (the
   * container image) leaves out: there the module is absent and the command says where it runs.
   */
  sourceOnly?: boolean;
}

const commands: Record<string, CommandSpec> = {
  run: {
    summary: 'run the monitor, the remediation engine and the Slack app (production)',
    usage: 'gpu-medic run',
    load: () => import('./commands/run.js'),
  },
  demo: {
    summary: 'run the real bot against a built-in simulated EKS cluster with injected faults',
    usage: 'gpu-medic demo [--nodes N] [--duration SECONDS] [--interval SECONDS]',
    load: () => loadSourceOnly('demo'),
    sourceOnly: true,
  },
  scan: {
    summary: "one pass over the cluster's GPU nodes, print every verdict; changes nothing",
    usage: 'gpu-medic scan [--json]',
    load: () => import('./commands/scan.js'),
  },
  classify: {
    summary: 'classify dumps without a cluster (Prometheus exposition, kernel log, dcgmi output, bundles)',
    usage: 'gpu-medic classify [--json] [--llm] [FILE|-]…',
    load: () => import('./commands/classify.js'),
  },
  config: {
    summary: 'print the effective configuration, secrets redacted',
    usage: 'gpu-medic config',
    load: () => import('./commands/config.js'),
  },
  report: {
    summary: 'repair records for RMA / support cases: one row per GPU and repair (CSV or JSON)',
    usage: 'gpu-medic report [--since 30d] [--format csv|json]',
    load: () => import('./commands/report.js'),
  },
  cordon: manual('cordon'),
  uncordon: manual('uncordon'),
  reset: {
    summary:
      'reset a node’s GPU with nvidia-smi (all GPUs on NVSwitch types) through the same checks (honours DRY_RUN)',
    usage: 'gpu-medic reset NODE [--gpu N] [--reason TEXT]',
    load: () => import('./commands/manual.js'),
  },
  reboot: manual('reboot'),
  replace: manual('replace'),
  exclude: {
    summary: 'exclude a node from every action',
    usage: 'gpu-medic exclude NODE [--for 2h] [--reason TEXT]',
    load: () => import('./commands/manual.js'),
  },
  unexclude: {
    summary: 'remove a node exclusion',
    usage: 'gpu-medic unexclude NODE',
    load: () => import('./commands/manual.js'),
  },
  eval: {
    summary: 'classifier accuracy over the labelled corpus in eval/ (rules baseline, then the chosen mode)',
    usage: 'gpu-medic eval [--mode rules|hybrid|llm] [--real] [--json] [--corpus DIR] [--policy FILE]',
    load: () => loadSourceOnly('eval'),
    sourceOnly: true,
  },
  bench: {
    summary: 'measure scan speed, CPU and memory on a simulated fleet (writes docs/benchmarks.md)',
    usage: 'gpu-medic bench [--sizes 100,1000,5000] [--no-llm] [--llm-nodes N] [--no-write]',
    load: () => loadSourceOnly('bench'),
    sourceOnly: true,
  },
};

function manual(action: string): CommandSpec {
  return {
    summary: `${action} a node through the same checks as the monitor and Slack (honours DRY_RUN)`,
    usage: `gpu-medic ${action} NODE [--reason TEXT]`,
    load: () => import('./commands/manual.js'),
  };
}

export function helpText(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'gpu-medic — keeps the GPU nodes of an EKS cluster healthy, with its people in Slack',
    '',
    'Usage: gpu-medic <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Configuration comes from the environment (see README.md, or `gpu-medic config`).',
    'Run `gpu-medic <command> --help` for a command’s options.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(helpText());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    console.log(pkg.version);
    return 0;
  }
  const spec = commands[name];
  if (!spec) {
    console.error(`gpu-medic: unknown command '${name}'\n\n${helpText()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`Usage: ${spec.usage}\n\n${spec.summary}`);
    return 0;
  }
  const mod = await loadCommand(name, spec);
  return mod.main(name === 'exclude' || name === 'unexclude' || name in manualNames ? [name, ...rest] : rest);
}

const manualNames = { cordon: 1, uncordon: 1, reboot: 1, replace: 1 };

/**
 * A command the production build leaves out, imported by a computed path: the compiler follows an import
 * of a literal path and would compile the simulator into the image.
 */
function loadSourceOnly(name: string): ReturnType<CommandSpec['load']> {
  const path = `./commands/${name}.js`;
  return import(path);
}

async function loadCommand(name: string, spec: CommandSpec): ReturnType<CommandSpec['load']> {
  try {
    return await spec.load();
  } catch (error) {
    const missing = (error as { code?: unknown } | undefined)?.code === 'ERR_MODULE_NOT_FOUND';
    if (!spec.sourceOnly || !missing) throw error;
    throw new CliError(
      `'${name}' is only available from a source checkout (clone the repository, \`npm ci\`, then \`npx gpu-medic ${name}\`): this installation leaves out the simulator, the benchmarks and the evaluation`,
      2,
    );
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof CliError) {
      console.error(`gpu-medic: ${error.message}`);
      process.exitCode = error.exitCode;
    } else {
      // An operational failure (API down, DB unwritable …): its message, not a stack trace, unless debugging.
      const debug = process.env.LOG_LEVEL === 'debug' || process.env.LOG_LEVEL === 'trace';
      console.error(`gpu-medic: ${error instanceof Error ? error.message : String(error)}`);
      if (debug) console.error(error);
      process.exitCode = 1;
    }
  },
);
