/**
 * The labelled evaluation corpus: a folder of fault dumps plus `labels.yaml`, which says for each dump what a
 * careful SRE would call it. Labels are external input: parsed with zod, every problem reported at once.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { Severities } from '../domain/finding.js';

export const CorpusSources = ['kernel', 'exporter', 'dcgmi', 'bundle'] as const;
export type CorpusSource = (typeof CorpusSources)[number];

export const Expectation = z.strictObject({
  category: z.string().min(1),
  severity: z.enum(Severities).optional(),
  xid: z.number().int().min(0).optional(),
  gpu: z.number().int().min(0).optional(),
});
export type Expectation = z.infer<typeof Expectation>;

export const CorpusLabel = z.strictObject({
  file: z
    .string()
    .min(1)
    .refine((f) => basename(f) === f, 'must be a file name inside the corpus folder'),
  expect: Expectation,
  source: z.enum(CorpusSources),
  note: z.string().default(''),
  /** The rules cannot settle this dump: a right answer needs the model. */
  needsLlm: z.boolean().default(false),
  /** The node's `nvidia.com/gpu` capacity, which a dump does not carry. */
  expectedGpus: z.number().int().positive().optional(),
});
export type CorpusLabel = z.infer<typeof CorpusLabel>;

const LabelsFile = z.strictObject({ items: z.array(CorpusLabel).min(1) });

export interface CorpusItem extends CorpusLabel {
  /** The file name: unique in the corpus, used as the node name so answers can be traced to items. */
  id: string;
  text: string;
}

export class CorpusError extends Error {
  readonly code = 'CORPUS_INVALID';
  constructor(
    readonly dir: string,
    readonly problems: string[],
  ) {
    super(`eval corpus ${dir}: ${problems.join('; ')}`);
    this.name = 'CorpusError';
  }
}

function readText(path: string): string | NodeJS.ErrnoException {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
}

/** Reads `labels.yaml` and every dump it names. Throws CorpusError listing every problem found. */
export function loadCorpus(dir: string): CorpusItem[] {
  const labelsPath = join(dir, 'labels.yaml');
  const raw = readText(labelsPath);
  if (typeof raw !== 'string')
    throw new CorpusError(dir, [`labels.yaml cannot be read (${raw.code ?? raw.message})`]);
  const doc = parseDocument(raw, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new CorpusError(
      dir,
      doc.errors.map((e) => `labels.yaml: ${e.message.split('\n')[0]}`),
    );
  }
  const parsed = LabelsFile.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    throw new CorpusError(
      dir,
      parsed.error.issues.map((i) => `labels.yaml ${i.path.join('.') || '(top level)'}: ${i.message}`),
    );
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  const items: CorpusItem[] = [];
  for (const label of parsed.data.items) {
    if (seen.has(label.file)) {
      problems.push(`${label.file} is labelled more than once`);
      continue;
    }
    seen.add(label.file);
    const text = readText(join(dir, label.file));
    if (typeof text !== 'string') {
      problems.push(`${label.file} cannot be read (${text.code ?? text.message})`);
      continue;
    }
    items.push({ ...label, id: label.file, text });
  }
  if (problems.length > 0) throw new CorpusError(dir, problems);
  return items;
}
