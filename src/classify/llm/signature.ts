/**
 * A fault's signature: its evidence with everything node-specific removed, hashed. The same fault on a
 * thousand nodes reads the same once names, PIDs, addresses, timestamps and GPU indices are gone, so it
 * costs one model call.
 */
import { createHash } from 'node:crypto';
import type { Verdict } from '../../domain/finding.js';
import type { NodeSnapshot } from '../../domain/gpu.js';
import type { ClassificationPolicy } from '../../domain/policy.js';
import { untrustedLines } from './evidence.js';

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// Order matters: structured tokens (timestamps, UUIDs, PCI ids) go before the generic number rule eats them.
const replacements: [RegExp, string][] = [
  [/\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?/g, '<ts>'],
  [/\[\s*\d+\.\d+\]/g, '<ts>'],
  [/\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}\b/g, '<ts>'],
  [/\b(?:GPU|MIG)-[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b/gi, '<uuid>'],
  [/\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b/gi, '<uuid>'],
  [/\bPCI:[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}(?:\.[0-7])?/gi, '<pci>'],
  [/\b[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b/gi, '<pci>'],
  [/\b[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b/gi, '<pci>'],
  [/\bi-[0-9a-f]{8,17}\b/g, '<instance>'],
  [/\bip-\d{1,3}-\d{1,3}-\d{1,3}-\d{1,3}(?:\.[a-z0-9.-]+)?/gi, '<host>'],
  [/\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:compute|ec2)\.internal\b/gi, '<host>'],
  [/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, '<ip>'],
  [/\b0x[0-9a-f]+\b/gi, '<hex>'],
  [/\bpid[=: ]\s*\d+/gi, 'pid=<pid>'],
  [/\bname=[^,\s]+/gi, 'name=<proc>'],
  // Keep the XID code as a token the number rule cannot reach (`xid_79`): it is the fault, not noise.
  [/\bXid\s*(?:\(<pci>\))?\s*:?\s*(\d{1,4})\b/gi, 'xid_$1'],
  [/\bgpu\s*(?:index\s*)?[=#: ]?\s*\d+\b/gi, 'gpu<i>'],
  [/\b\d+(?:\.\d+)?\b/g, '<n>'],
];

/** One line with node-specific tokens replaced; `node` is the node's own name when known. */
export function normalizeLine(line: string, node?: string): string {
  let out = line;
  // Whole names only: a short node name must not eat letters out of other words.
  if (node) out = out.replace(new RegExp(`(?<![\\w.-])${escapeRegExp(node)}(?![\\w-])`, 'gi'), '<node>');
  for (const [pattern, replacement] of replacements) out = out.replace(pattern, replacement);
  return out.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** The normalized lines a signature is made of (exposed for tests and for explaining a cache hit). */
export function signatureLines(
  snapshot: NodeSnapshot,
  verdict: Verdict,
  policy: ClassificationPolicy,
  mode: string,
): string[] {
  const findings = verdict.findings
    .map((f) => `finding ${f.kind} ${f.category} ${f.severity}${f.ambiguous ? ' ambiguous' : ''}`)
    .map((l) => normalizeLine(l));
  const text = untrustedLines(snapshot, verdict).map((l) => normalizeLine(l, snapshot.node));
  // The taxonomy is part of the question: editing the operator's categories must not reuse old answers.
  const taxonomy = policy.categories.map((c) => `category ${c.name} ${c.severity} ${c.description}`);
  return [
    `mode ${mode}`,
    ...[...new Set(taxonomy)].sort(),
    ...[...new Set(findings)].sort(),
    ...[...new Set(text)].sort(),
  ];
}

export function signatureOf(
  snapshot: NodeSnapshot,
  verdict: Verdict,
  policy: ClassificationPolicy,
  mode: string,
): string {
  return createHash('sha256')
    .update(signatureLines(snapshot, verdict, policy, mode).join('\n'))
    .digest('hex');
}
