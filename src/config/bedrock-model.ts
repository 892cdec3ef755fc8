/**
 * The default Bedrock model: an active Claude model through the cross-region inference profile of the
 * geography AWS_REGION is in. Pure (no SDK), so config, the Bedrock adapter and the eval share it.
 *
 * Why this model: Claude 3.7 Sonnet, the AWS sample's model, reached end of life on Bedrock on 2026-04-28
 * (calls fail with "The provided model identifier is invalid"). Claude Sonnet 4.6 is active and served by the
 * InvokeModel/Converse API this project uses, with forced tool use (the newer Messages-API-only models are
 * not reachable through Converse). Anthropic's "Claude on Amazon Bedrock" model table (checked 2026-12)
 * lists its cross-region profiles: global, us, eu, jp — and no apac profile. Like every Claude 4.x model
 * it is invoked through an inference profile only (on-demand calls with the bare model id are refused).
 *
 * Geography of a region (a profile's source regions are in its geography):
 *   us-*  (not us-gov-*)      → `us.`
 *   eu-*                      → `eu.`
 *   ap-northeast-1, -3 (Japan) → `jp.`
 *   everything else: other ap-* (no apac profile for this model), ca-*, sa-*, me-*, af-*, il-*, mx-* → `global.`
 * GovCloud and China have no profile of this model: set BEDROCK_MODEL_ID there.
 */

export const defaultBedrockBaseModel = 'anthropic.claude-sonnet-4-6';

export const BedrockGeographies = ['us', 'eu', 'jp', 'apac', 'global'] as const;
export type BedrockGeography = (typeof BedrockGeographies)[number];

/** The cross-region profile geographies the default model has (no apac, see above). */
const defaultModelGeographies: ReadonlySet<BedrockGeography> = new Set(['us', 'eu', 'jp', 'global']);

/** The geography of an AWS region, as Bedrock's cross-region inference profiles name them. */
export function bedrockGeography(region: string): BedrockGeography {
  const r = region.trim().toLowerCase();
  if (r.startsWith('us-') && !r.startsWith('us-gov-')) return 'us';
  if (r.startsWith('eu-')) return 'eu';
  if (r === 'ap-northeast-1' || r === 'ap-northeast-3') return 'jp';
  if (r.startsWith('ap-')) return 'apac';
  return 'global';
}

/** The default BEDROCK_MODEL_ID for a region: `us.anthropic.claude-sonnet-4-6` in us-east-1, … */
export function defaultBedrockModelIdFor(region: string): string {
  const geo = bedrockGeography(region);
  const prefix = defaultModelGeographies.has(geo) ? geo : 'global';
  return `${prefix}.${defaultBedrockBaseModel}`;
}
