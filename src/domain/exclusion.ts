const day = 24 * 3_600_000;

/**
 * An exclusion without a duration lasts 24 h, whether it comes from Slack, an alert button or the CLI:
 * long enough for a maintenance window or an overnight investigation, short enough that a forgotten
 * exclusion cannot hide a broken node for weeks.
 */
export const defaultExclusionMs = day;

/** The longest exclusion accepted: a typo like `300d` should be an error, not a node forgotten for a year. */
export const maxExclusionMs = 30 * day;
