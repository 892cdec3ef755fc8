/**
 * The Dockerfile and .dockerignore, read as a reviewer would (no Docker here): multi-stage, non-root, production
 * dependencies only, and the simulator, tools and tests left out of both the context and the build.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configData } from './support/manifests.js';
import { repoRoot } from './support/rbac.js';

// ---- Dockerfile --------------------------------------------------------------------------------------

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

/** Dockerfile instructions (continuations joined, comments dropped) grouped by build stage. */
function dockerStages(text: string): Stage[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const stages: Stage[] = [];
  for (const raw of joined.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) {
      stages.push({ from: from[1] as string, name: from[2], lines: [] });
      continue;
    }
    stages.at(-1)?.lines.push(line);
  }
  return stages;
}

describe('Dockerfile', () => {
  const text = readFileSync(`${repoRoot}/Dockerfile`, 'utf8');
  const stages = dockerStages(text);
  const runtime = stages.at(-1) as Stage;
  const has = (s: Stage, re: RegExp) => s.lines.some((l) => re.test(l));

  it('is multi-stage on Node 20 bookworm', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/ARG NODE_IMAGE=node:20-bookworm-slim/);
    for (const s of stages) expect(s.from).toMatch(/^\$\{NODE_IMAGE\}$/);
  });

  it('compiles TypeScript in a build stage and installs production dependencies with npm ci --omit=dev', () => {
    const build = stages.find((s) => s.name === 'build') as Stage;
    expect(has(build, /^RUN npm ci\b/)).toBe(true);
    expect(has(build, /npm run build/)).toBe(true);
    expect(stages.some((s) => has(s, /^RUN npm ci --omit=dev\b/))).toBe(true);
  });

  it('runs as a non-root user in the final stage, with no compiler installed there', () => {
    const users = runtime.lines.filter((l) => /^USER\s/i.test(l));
    expect(users).toHaveLength(1);
    const user = (users[0] as string).split(/\s+/)[1] as string;
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(user).toMatch(/^10001/);
    expect(has(runtime, /g\+\+|build-essential|apt-get install/)).toBe(false);
    expect(has(runtime, /^RUN npm ci\b(?!.*--omit=dev)/)).toBe(false);
  });

  it('ships dist/, bin/, data/ and production node_modules, and starts `gpu-medic run`', () => {
    expect(has(runtime, /^COPY --from=build \/app\/dist \.\/dist$/)).toBe(true);
    expect(has(runtime, /^COPY --from=deps \/app\/node_modules \.\/node_modules$/)).toBe(true);
    expect(has(runtime, /^COPY bin \.\/bin$/)).toBe(true);
    expect(has(runtime, /^COPY data\/\*\.csv \.\/data\/$/)).toBe(true);
    expect(runtime.lines).toContain('ENTRYPOINT ["node", "--heap-growing-percent=50", "bin/gpu-medic.js"]');
    expect(runtime.lines).toContain('CMD ["run"]');
    expect(runtime.lines).toContain('EXPOSE 3000');
  });

  it('sets production env and a DB path on the volume the Deployment mounts', () => {
    const env = runtime.lines.filter((l) => l.startsWith('ENV ')).join(' ');
    expect(env).toContain('NODE_ENV=production');
    expect(env).toContain('AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true');
    expect(env).toContain(`DB_PATH=${String(configData.DB_PATH)}`);
  });

  it('builds src/ with tsconfig.build.json', () => {
    const build = stages.find((s) => s.name === 'build') as Stage;
    expect(has(build, /^COPY src \.\/src$/)).toBe(true);
    expect(has(build, /^COPY tsconfig\.json tsconfig\.build\.json \.\/$/)).toBe(true);
    const pkg = JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
  });

  it('leaves the simulator, the benchmarks, the evaluation and test code out of the context and the build', () => {
    const ignore = readFileSync(`${repoRoot}/.dockerignore`, 'utf8').split(/\r?\n/);
    const left = imageExclusions();
    for (const p of imageMustLeaveOut) {
      expect(ignore, p).toContain(p);
      expect(left, p).toContain(p);
    }
    // The context and the build leave out the same src/ files.
    expect(ignore.filter((l) => l.startsWith('src/')).sort()).toEqual([...left].sort());
    // What is left out really is: sample paths of each kind match.
    for (const f of [
      'src/sim/cluster.ts',
      'src/bench/run.ts',
      'src/eval/suite.ts',
      'src/commands/demo.ts',
      'src/app/chat.test.ts',
      'src/remediate/testing/harness.ts',
      'src/store/kill-writer.fixture.ts',
    ])
      expect(isLeftOut(f, left), f).toBe(true);
    for (const f of ['src/cli.ts', 'src/app/runtime.ts', 'src/commands/run.ts', 'src/commands/scan.ts'])
      expect(isLeftOut(f, left), f).toBe(false);
  });

  it('builds: no file the image keeps imports one it leaves out (src/sim is the tests’ and tools’ only)', () => {
    const left = imageExclusions();
    const kept = productionSources(left);
    expect(kept).toContain('src/cli.ts');
    const offenders: string[] = [];
    for (const file of kept) {
      // A literal dynamic import counts too: the compiler follows it into the build.
      for (const target of relativeImports(file)) {
        if (isLeftOut(target, left)) offenders.push(`${file} → ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('keeps secrets, local databases and build output out of the build context', () => {
    const ignore = readFileSync(`${repoRoot}/.dockerignore`, 'utf8').split(/\r?\n/);
    for (const p of ['node_modules', 'dist', '.git', 'data/*.db', '.env']) expect(ignore).toContain(p);
    for (const needed of ['src', 'bin', 'data', 'package.json', 'package-lock.json'])
      expect(ignore).not.toContain(needed);
  });
});

/** What the image must leave out: the tools that need the simulator, and tests with their support code. */
const imageMustLeaveOut = [
  'src/sim',
  'src/bench',
  'src/eval',
  'src/commands/demo.ts',
  'src/commands/bench.ts',
  'src/commands/eval.ts',
  'src/**/*.test.ts',
];

/** tsconfig.build.json's `exclude`: what the production build leaves out of src/. */
function imageExclusions(): string[] {
  const tsconfig = JSON.parse(readFileSync(`${repoRoot}/tsconfig.build.json`, 'utf8')) as {
    exclude: string[];
  };
  return tsconfig.exclude;
}

/** A tsconfig / .dockerignore pattern (`**`, `*`, or a directory) as a regular expression over paths. */
function patternRegExp(pattern: string): RegExp {
  const body = pattern
    .split(/(\*\*\/|\*)/)
    .map((part) =>
      part === '**/' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${body}(?:/.*)?$`);
}

function isLeftOut(path: string, patterns: string[]): boolean {
  return patterns.some((p) => patternRegExp(p).test(path));
}

/** Every TypeScript file of src/ the production build compiles. */
function productionSources(left: string[]): string[] {
  return (readdirSync(`${repoRoot}/src`, { recursive: true }) as string[])
    .map((f) => `src/${f.split('\\').join('/')}`)
    .filter((f) => f.endsWith('.ts') && !isLeftOut(f, left));
}

/** The src/ files a source file imports (statically or by a literal `import()`), as .ts paths. */
function relativeImports(file: string): string[] {
  // Comments dropped: a path quoted in a comment is not an import.
  const text = readFileSync(`${repoRoot}/${file}`, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const dir = file.split('/').slice(0, -1);
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    const parts = [...dir];
    for (const seg of (m[1] as string).split('/')) {
      if (seg === '..') parts.pop();
      else if (seg !== '.') parts.push(seg);
    }
    found.push(parts.join('/').replace(/\.js$/, '.ts'));
  }
  return found;
}
