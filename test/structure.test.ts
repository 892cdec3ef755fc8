/**
 * Test support lives in test/support/ and never ships: no production file under src/ may import anything
 * from test/ (tsconfig.build.json compiles src/ alone, so such an import would also break the image build).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const srcRoot = join(repoRoot, 'src');
const testRoot = join(repoRoot, 'test');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

/** Static imports, re-exports and dynamic `import('…')` with a literal specifier. */
function importSpecifiers(code: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
  ];
  for (const pattern of patterns) for (const m of code.matchAll(pattern)) if (m[1]) found.push(m[1]);
  return found;
}

/** The specifiers of `code` (a file at `file`) that resolve into test/. */
function testImports(file: string, code: string): string[] {
  return importSpecifiers(code).filter((spec) => {
    if (!spec.startsWith('.')) return false;
    const target = resolve(dirname(file), spec);
    return target === testRoot || target.startsWith(testRoot + sep);
  });
}

describe('test support stays out of production code', () => {
  it('no non-test file under src/ imports from test/', () => {
    const offenders = sourceFiles(srcRoot)
      .filter((file) => !file.endsWith('.test.ts'))
      .flatMap((file) =>
        testImports(file, readFileSync(file, 'utf8')).map((spec) => `${relative(repoRoot, file)} → ${spec}`),
      );
    expect(offenders).toEqual([]);
  });

  it('the check sees static, re-exported and dynamic imports of test support', () => {
    const file = join(srcRoot, 'remediate', 'engine.ts');
    const code = [
      "import { createHarness } from '../../test/support/engine-harness.js';",
      "export { FakeClock } from '../../test/support/fake-clock.js';",
      "const m = await import('../../test/support/wait.js');",
      "import '../../test/support/side-effect.js';",
      "import { RemediationEngine } from './engine.js';",
      "import { z } from 'zod';",
    ].join('\n');
    expect(testImports(file, code)).toEqual([
      '../../test/support/engine-harness.js',
      '../../test/support/fake-clock.js',
      '../../test/support/wait.js',
      '../../test/support/side-effect.js',
    ]);
  });

  it('test support files are not left under src/', () => {
    const leftovers = sourceFiles(srcRoot)
      .map((file) => relative(srcRoot, file))
      .filter((file) =>
        /(^|\/)(testing|test-support)(\/|\.)|test-chat-port|test-fixtures|\.fixture\.ts$/.test(file),
      );
    expect(leftovers).toEqual([]);
  });
});
