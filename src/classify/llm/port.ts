/**
 * The classifier's view of a language model: one structured question, one structured answer.
 * Adapters (src/aws/bedrock.ts) implement it, so nothing in classify/ imports a model SDK.
 */

export interface LlmRequest {
  system: string;
  user: string;
  /** Category names the tool schema offers (the model may still answer anything: validate). */
  categories: string[];
}

export interface LlmUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface LlmResponse {
  /** The tool-use input as the model produced it, or its plain text when it ignored the tool. Untrusted. */
  input: unknown;
  usage: LlmUsage;
  latencyMs: number;
}

export interface LlmClient {
  classify(request: LlmRequest): Promise<LlmResponse>;
}

/** A model call that failed for good (after any retries the adapter makes). */
export class LlmError extends Error {
  readonly code: string = 'LLM_ERROR';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LlmError';
  }
}

/** The call did not answer within its time budget. */
export class LlmTimeoutError extends LlmError {
  override readonly code = 'LLM_TIMEOUT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LlmTimeoutError';
  }
}

/** The service kept throttling (or was unavailable) until the time budget ran out. */
export class LlmThrottledError extends LlmError {
  override readonly code = 'LLM_THROTTLED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LlmThrottledError';
  }
}

/**
 * The service refuses the configured model for good: an invalid or retired id ("The provided model identifier
 * is invalid", "reached the end of its life"), a model the account may not use. Retrying cannot help; the
 * classifier stops calling it and the rules go on alone until the configuration changes.
 */
export class LlmModelUnavailableError extends LlmError {
  override readonly code = 'LLM_MODEL_UNAVAILABLE';
  constructor(
    message: string,
    readonly modelId: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LlmModelUnavailableError';
  }
}
