/** Ports: what the core needs from the outside world. Adapters (k8s/, aws/, store/, slack/) implement them. */
import type { ClassificationSource, Severity } from './finding.js';

/** A model's classification of one fault signature, as cached (LLM cache, keyed by normalized evidence). */
export interface CachedClassification {
  category: string;
  severity: Severity;
  gpu?: number;
  xid?: number;
  confidence: number;
  explanation: string;
  source: ClassificationSource;
  /** Model answer rejected by validation: the rules' verdict stood. Cached too, so we do not ask again. */
  rejected?: string;
}

export interface SignatureCache {
  get(signature: string, now: number): CachedClassification | undefined;
  put(signature: string, value: CachedClassification, expiresAt: number): void;
}

/** An append-only audit trail: who did what, why, and how it ended. */
export interface AuditEntry {
  at: number;
  actor: string;
  action: string;
  node?: string;
  incidentId?: string;
  reason?: string;
  result: string;
  details?: Record<string, unknown>;
}

export interface AuditLog {
  append(entry: AuditEntry): void;
  list(filter?: { node?: string; incidentId?: string; limit?: number }): AuditEntry[];
}

/** A node exclusion: gpu-medic never touches an excluded node. */
export interface Exclusion {
  node: string;
  reason: string;
  createdBy: string;
  createdAt: number;
  /** undefined = until removed. */
  expiresAt?: number;
}
