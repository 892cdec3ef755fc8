/**
 * All configuration comes from the environment (plus the policy YAML named by POLICY_FILE), parsed in one
 * place with `env` injectable. Start-up fails fast with a ConfigError listing EVERY bad or missing variable,
 * so an operator fixes a Deployment in one round trip instead of one variable per crash loop.
 */

import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { DiagLevel } from '../domain/diag.js';
import type { Policy } from '../domain/policy.js';
import { defaultBedrockModelIdFor } from './bedrock-model.js';
import {
  boolean,
  list,
  nonNegativeInt,
  numberWithDefault,
  oneOf,
  optionalNumber,
  optionalString,
  patterned,
  patternedWithDefault,
  positiveInt,
  positiveSeconds,
  postgresUrl,
  stringWithDefault,
  url,
} from './env-parsers.js';
import { loadPolicy, PolicyError } from './policy-file.js';

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export const LogLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LogLevels)[number];
export const DcgmSources = ['auto', 'exporter', 'dcgm-server', 'prometheus'] as const;
export type DcgmSource = (typeof DcgmSources)[number];
export const DcgmAccessModes = ['proxy', 'direct'] as const;
export type DcgmAccess = (typeof DcgmAccessModes)[number];
/** PROMETHEUS_SIGV4: sign queries for Amazon Managed Prometheus (`auto`: when the URL is an AMP workspace). */
export const PrometheusSigV4Modes = ['auto', 'on', 'off'] as const;
export type PrometheusSigV4Mode = (typeof PrometheusSigV4Modes)[number];
const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d+$/;
/** An AMP workspace endpoint: `https://aps-workspaces.<region>.amazonaws.com/workspaces/ws-…`. */
const AMP_HOST_RE = /^aps-workspaces\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$/;
export const ClassifierModes = ['rules', 'hybrid', 'llm'] as const;
export type ClassifierMode = (typeof ClassifierModes)[number];
export type SlackMode = 'socket' | 'http' | 'disabled';
/** EKS_AUTO_REPAIR: how gpu-medic shares nodes with EKS node auto repair (README: "EKS node auto repair"). */
export const AutoRepairModes = ['detect', 'defer', 'ignore'] as const;
export type AutoRepairMode = (typeof AutoRepairModes)[number];

/** The default BEDROCK_MODEL_ID in the default region (us-east-1); other regions: defaultBedrockModelIdFor. */
export const defaultBedrockModelId = defaultBedrockModelIdFor('us-east-1');
export const serviceAccountNamespaceFile = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** One schema per variable, keyed by its env name, so an issue's path IS the variable to blame. */
const EnvSchema = z.object({
  KUBECONFIG: optionalString(),
  CLUSTER_NAME: patternedWithDefault(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/,
    'an EKS cluster name (letters, digits, - and _, up to 100)',
    'eks-gpu-cluster',
  ),
  AWS_REGION: patternedWithDefault(
    /^[a-z]{2}(-[a-z]+)+-\d+$/,
    'an AWS region such as us-east-1',
    'us-east-1',
  ),
  MONITOR_INTERVAL: positiveSeconds(60),
  LOG_LEVEL: oneOf(LogLevels, 'info'),
  DB_PATH: stringWithDefault('./data/gpu-medic.db'),
  DATABASE_URL: postgresUrl(),
  PORT: numberWithDefault({ integer: true, min: 0, max: 65535 }, 3000),
  DRY_RUN: boolean(false),

  SLACK_BOT_TOKEN: patterned(/^xox[bp]-[A-Za-z0-9-]+$/, 'a Slack bot token starting with xoxb-', {
    secret: true,
  }),
  SLACK_SIGNING_SECRET: patterned(/^[A-Za-z0-9]{8,}$/, 'a Slack signing secret (hex characters)', {
    secret: true,
  }),
  SLACK_APP_TOKEN: patterned(/^xapp-[A-Za-z0-9-]+$/, 'a Slack app-level token starting with xapp-', {
    secret: true,
  }),
  SLACK_CHANNEL: patterned(/^([CGD][A-Z0-9]{2,}|#?[a-z0-9][a-z0-9_-]{0,79})$/, 'a channel id (C…) or name'),
  SLACK_API_URL: url({ trailingSlash: true }),
  SLACK_ADMIN_USERS: list(/^[UW][A-Z0-9]{2,}$/, 'Slack user ids (U…)'),
  SLACK_ADMIN_GROUP: patterned(/^S[A-Z0-9]{2,}$/, 'a Slack user group id (S…)'),

  SNS_TOPIC_ARN: patterned(
    /^arn:aws[a-z-]*:sns:[a-z]{2}(-[a-z]+)+-\d+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/,
    'an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)',
  ),
  WEBHOOK_URL: url(),
  WEBHOOK_SECRET: optionalString(),
  LAMBDA_FUNCTION: patterned(
    /^(arn:aws[a-z-]*:lambda:[a-z]{2}(-[a-z]+)+-\d+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]{1,128})?$/,
    'a Lambda function name or ARN',
  ),
  CLOUDWATCH_NAMESPACE: patternedWithDefault(
    /^(?!AWS\/)[A-Za-z0-9.\-_/#:]{1,255}$/,
    'a CloudWatch namespace (not starting with AWS/)',
    'GPUMedic',
  ),
  CLOUDWATCH_PER_NODE: boolean(false),
  CLOUDWATCH_ENABLED: boolean(true),

  POLICY_FILE: optionalString(),

  GPU_NODE_SELECTOR: optionalString(),
  DCGM_SOURCE: oneOf(DcgmSources, 'auto'),
  DCGM_NAMESPACE: patterned(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a Kubernetes namespace name'),
  DCGM_SELECTOR: optionalString(),
  DCGM_ACCESS: oneOf(DcgmAccessModes, 'proxy'),
  DCGM_PORT: numberWithDefault({ integer: true, min: 1, max: 65535 }, 9400),
  DCGM_SERVER_NAMESPACE: patterned(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a Kubernetes namespace name'),
  DCGM_SERVER_SELECTOR: optionalString(),
  // Where `nvidia-smi --gpu-reset` runs: a privileged pod on the node (default: the DCGM host-engine pods).
  RESET_POD_NAMESPACE: patterned(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a Kubernetes namespace name'),
  RESET_POD_SELECTOR: optionalString(),
  RESET_POD_CONTAINER: patterned(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a container name'),
  RESET_TIMEOUT: positiveSeconds(180),
  PROMETHEUS_URL: url(),
  PROMETHEUS_TIMEOUT: positiveSeconds(10),
  PROMETHEUS_SIGV4: oneOf(PrometheusSigV4Modes, 'auto'),
  PROMETHEUS_REGION: patterned(REGION_RE, 'an AWS region such as us-east-1'),
  SCAN_CONCURRENCY: positiveInt(32),
  SCAN_TIMEOUT: positiveSeconds(10),

  CLASSIFIER: oneOf(ClassifierModes, 'hybrid'),
  // Default: an active Claude through AWS_REGION's cross-region inference profile (config/bedrock-model.ts).
  BEDROCK_MODEL_ID: optionalString(),
  LLM_CACHE_TTL: positiveSeconds(86_400),
  LLM_TIMEOUT: positiveSeconds(20),
  LLM_MAX_CALLS_PER_HOUR: nonNegativeInt(60),

  MAX_CONCURRENT_REMEDIATIONS: nonNegativeInt(1),
  MAX_UNHEALTHY_PERCENT: numberWithDefault({ min: 0, max: 100 }, 20),
  MAX_UNHEALTHY_NODES: optionalNumber({ integer: true, min: 0 }),
  REMEDIATIONS_PER_HOUR: nonNegativeInt(5),
  DRAIN_TIMEOUT: positiveSeconds(900),
  REBOOT_TIMEOUT: positiveSeconds(1200),
  REPLACE_TIMEOUT: positiveSeconds(1800),
  GPU_SETTLE_TIMEOUT: positiveSeconds(900),
  POST_REPAIR_DIAG: oneOf(['off', '1', '2', '3'], '1'),
  REBOOT_GRACE: positiveSeconds(120),
  EKS_AUTO_REPAIR: oneOf(AutoRepairModes, 'detect'),
  EKS_AUTO_REPAIR_WINDOW: optionalNumber({ min: 0, exclusiveMin: true }),
  REMEDIATION_POLL: positiveSeconds(10),
  LEASE_DURATION: positiveSeconds(15),
  LEASE_RENEW: positiveSeconds(5),
  // How often a cluster's leader looks for Slack requests other processes queued for it.
  FLEET_REQUEST_POLL: positiveSeconds(1),

  LEASE_NAME: patternedWithDefault(
    /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/,
    'a Kubernetes object name',
    'gpu-medic-leader',
  ),
  POD_NAMESPACE: patterned(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a Kubernetes namespace name'),
  POD_NAME: patterned(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'a Kubernetes pod name'),

  // Bearer token of POST /webhooks/alertmanager (http/alertmanager.ts); unset → the route is off.
  ALERTMANAGER_TOKEN: patterned(/^[\x21-\x7e]{16,}$/, 'a token of at least 16 printable characters', {
    secret: true,
  }),
});

export interface Config {
  readonly clusterName: string;
  readonly dryRun: boolean;
  readonly log: { readonly level: LogLevel };
  /**
   * `databaseUrl` set ⇒ PostgreSQL (schema `gpu_medic_<cluster>`); unset ⇒ SQLite at `dbPath`. `cluster`
   * is CLUSTER_NAME, repeated here so the store's opener needs nothing else.
   */
  readonly store: { readonly dbPath: string; readonly databaseUrl?: string; readonly cluster: string };
  readonly http: { readonly port: number };
  /** undefined token ⇒ no `POST /webhooks/alertmanager` route. */
  readonly alertmanager: { readonly token?: string };
  readonly kube: {
    /** undefined ⇒ in-cluster service account. */
    readonly kubeconfig?: string;
    readonly gpuNodeSelector?: string;
    readonly podNamespace: string;
    /** This pod's name (downward API); the leader identity starts with it. undefined ⇒ the host name. */
    readonly podName?: string;
  };
  readonly leader: {
    readonly leaseName: string;
    readonly namespace: string;
    readonly leaseDurationSeconds: number;
    readonly renewSeconds: number;
    /** How often the leader claims the requests queued for its cluster (FLEET_REQUEST_POLL). */
    readonly requestPollSeconds: number;
  };
  readonly aws: {
    readonly region: string;
    /** AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> as found: the SDK reads them itself; kept for display. */
    readonly endpoints: Readonly<Record<string, string>>;
  };
  readonly monitor: {
    readonly intervalSeconds: number;
    readonly scanConcurrency: number;
    readonly scanTimeoutSeconds: number;
  };
  /** The GPU reset: the pod it runs in (default: the DCGM host-engine pods) and how long it may take. */
  readonly reset: {
    /** undefined ⇒ DCGM_SERVER_NAMESPACE, else every namespace. */
    readonly namespace?: string;
    /** undefined ⇒ DCGM_SERVER_SELECTOR, else `k8s-app=dcgm-server` and `app=nvidia-dcgm`. */
    readonly selector?: string;
    /** undefined ⇒ the pod's first container. */
    readonly container?: string;
    readonly timeoutSeconds: number;
  };
  readonly dcgm: {
    readonly source: DcgmSource;
    /** undefined ⇒ every namespace. */
    readonly namespace?: string;
    /** undefined ⇒ both `app=nvidia-dcgm-exporter` and `app.kubernetes.io/name=dcgm-exporter`. */
    readonly selector?: string;
    readonly access: DcgmAccess;
    readonly port: number;
    /** DCGM host-engine pods for the dcgm-server source. */
    readonly server: {
      /** undefined ⇒ every namespace (the EKS node monitoring agent lives in its Helm release's namespace). */
      readonly namespace?: string;
      /** undefined ⇒ both `k8s-app=dcgm-server` (EKS node monitoring agent) and `app=nvidia-dcgm` (GPU Operator). */
      readonly selector?: string;
    };
    /** DCGM_SOURCE=prometheus: where the exporters' series are queried; undefined for the other sources. */
    readonly prometheus?: {
      /** The Prometheus base URL (or the AMP workspace URL), without `/api/v1/query`. */
      readonly url: string;
      readonly timeoutSeconds: number;
      /** SigV4-sign for service `aps` in this region; undefined ⇒ no signing (plain Prometheus). */
      readonly sigv4Region?: string;
    };
  };
  readonly classifier: {
    readonly mode: ClassifierMode;
    readonly bedrockModelId: string;
    readonly cacheTtlSeconds: number;
    readonly timeoutSeconds: number;
    readonly maxCallsPerHour: number;
  };
  readonly remediation: {
    readonly maxConcurrent: number;
    readonly maxUnhealthyPercent: number;
    readonly maxUnhealthyNodes?: number;
    readonly perHour: number;
    readonly drainTimeoutSeconds: number;
    readonly rebootTimeoutSeconds: number;
    readonly replaceTimeoutSeconds: number;
    /**
     * After a reboot (node Ready, new boot ID) or on a replacement node: how long the settle gate waits for the
     * GPUs to be allocatable, the exporter/DCGM pod to be Ready and a complete scan to read every GPU.
     */
    readonly settleTimeoutSeconds: number;
    /**
     * POST_REPAIR_DIAG: the DCGM diagnostic level (`dcgmi diag -r`) run after a repair's settle gate, before
     * uncordon; undefined = off.
     */
    readonly postRepairDiag?: DiagLevel;
    /** After a crash between "reboot started" and the EC2 call, how long to look for signs of the reboot. */
    readonly rebootGraceSeconds: number;
    /** How often a waiting step looks again (node back, replacement Ready, PDB, jobs). */
    readonly pollSeconds: number;
    /** EKS_AUTO_REPAIR: detect (ask DescribeNodegroup), defer (assume on for node groups), ignore. */
    readonly autoRepair: AutoRepairMode;
    /**
     * EKS_AUTO_REPAIR_WINDOW: how long a deferred node is watched for EKS's repair; undefined ⇒ the condition's
     * documented repair-after (10 min GPU, 30 min others) plus 10 minutes.
     */
    readonly autoRepairWindowSeconds?: number;
  };
  readonly slack: {
    /** socket: SLACK_APP_TOKEN set · http: bot token without app token · disabled: no bot token. */
    readonly mode: SlackMode;
    readonly botToken?: string;
    readonly signingSecret?: string;
    readonly appToken?: string;
    readonly channel?: string;
    /** Always ends with '/', as WebClient's slackApiUrl expects. */
    readonly apiUrl?: string;
    readonly adminUsers: readonly string[];
    readonly adminGroup?: string;
  };
  readonly notify: {
    readonly snsTopicArn?: string;
    readonly webhookUrl?: string;
    readonly webhookSecret?: string;
    readonly lambdaFunction?: string;
    readonly cloudwatch: { readonly enabled: boolean; readonly namespace: string; readonly perNode: boolean };
  };
  readonly policyFile?: string;
  readonly policy: Readonly<Policy>;
}

export interface LoadConfigOptions {
  /** Where the pod's namespace is read from when POD_NAMESPACE is unset (tests point it elsewhere). */
  namespaceFile?: string;
}

function readNamespaceFile(path: string): string | undefined {
  try {
    const ns = readFileSync(path, 'utf8').trim();
    return ns === '' ? undefined : ns;
  } catch {
    return undefined;
  }
}

const endpointVar = /^AWS_ENDPOINT_URL(_[A-Z0-9_]+)?$/;

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Parse the environment into a frozen Config, or throw a ConfigError naming every problem. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: LoadConfigOptions = {}): Config {
  const problems: string[] = [];
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${String(issue.path[0])}: ${issue.message}`);
  }

  const endpoints: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (!endpointVar.test(k) || v === undefined || v.trim() === '') continue;
    const r = url().safeParse(v);
    if (r.success && r.data) endpoints[k] = r.data;
    else problems.push(`${k}: ${r.error?.issues[0]?.message ?? 'expected a URL'}`);
  }

  let policy: Policy | undefined;
  try {
    policy = loadPolicy(parsed.success ? parsed.data.POLICY_FILE : optionalString().parse(env.POLICY_FILE));
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    problems.push(`POLICY_FILE: ${err.message}`);
  }

  if (parsed.success) {
    const e = parsed.data;
    if (e.SLACK_BOT_TOKEN && !e.SLACK_APP_TOKEN && !e.SLACK_SIGNING_SECRET) {
      problems.push(
        'SLACK_SIGNING_SECRET: required in HTTP mode (SLACK_BOT_TOKEN set without SLACK_APP_TOKEN) to verify requests from Slack',
      );
    }
    if (e.SLACK_BOT_TOKEN && !e.SLACK_CHANNEL) {
      problems.push('SLACK_CHANNEL: required when SLACK_BOT_TOKEN is set (where alerts are posted)');
    }
    if (e.LEASE_RENEW >= e.LEASE_DURATION) {
      problems.push(
        `LEASE_RENEW: must be shorter than LEASE_DURATION (${e.LEASE_DURATION}s), got ${e.LEASE_RENEW}s — the lease would lapse between renewals`,
      );
    }
    if (e.DCGM_SOURCE === 'prometheus' && !e.PROMETHEUS_URL) {
      problems.push(
        'PROMETHEUS_URL: required when DCGM_SOURCE=prometheus (the Prometheus or Amazon Managed Prometheus workspace URL)',
      );
    }
    if (e.SLACK_APP_TOKEN && !e.SLACK_BOT_TOKEN) {
      problems.push(
        'SLACK_BOT_TOKEN: required when SLACK_APP_TOKEN is set (Socket Mode still posts with the bot token)',
      );
    }
  }

  if (!parsed.success || policy === undefined || problems.length > 0) throw new ConfigError(problems);
  const e = parsed.data;
  const namespace =
    e.POD_NAMESPACE ?? readNamespaceFile(options.namespaceFile ?? serviceAccountNamespaceFile) ?? 'gpu-medic';

  const config: Config = {
    clusterName: e.CLUSTER_NAME,
    dryRun: e.DRY_RUN,
    log: { level: e.LOG_LEVEL },
    store: {
      dbPath: e.DB_PATH,
      cluster: e.CLUSTER_NAME,
      ...(e.DATABASE_URL ? { databaseUrl: e.DATABASE_URL } : {}),
    },
    http: { port: e.PORT },
    kube: {
      kubeconfig: e.KUBECONFIG,
      gpuNodeSelector: e.GPU_NODE_SELECTOR,
      podNamespace: namespace,
      podName: e.POD_NAME,
    },
    alertmanager: { token: e.ALERTMANAGER_TOKEN },
    leader: {
      leaseName: e.LEASE_NAME,
      namespace,
      leaseDurationSeconds: e.LEASE_DURATION,
      renewSeconds: e.LEASE_RENEW,
      requestPollSeconds: e.FLEET_REQUEST_POLL,
    },
    aws: { region: e.AWS_REGION, endpoints },
    monitor: {
      intervalSeconds: e.MONITOR_INTERVAL,
      scanConcurrency: e.SCAN_CONCURRENCY,
      scanTimeoutSeconds: e.SCAN_TIMEOUT,
    },
    reset: {
      namespace: e.RESET_POD_NAMESPACE ?? e.DCGM_SERVER_NAMESPACE,
      selector: e.RESET_POD_SELECTOR ?? e.DCGM_SERVER_SELECTOR,
      container: e.RESET_POD_CONTAINER,
      timeoutSeconds: e.RESET_TIMEOUT,
    },
    dcgm: {
      source: e.DCGM_SOURCE,
      namespace: e.DCGM_NAMESPACE,
      selector: e.DCGM_SELECTOR,
      access: e.DCGM_ACCESS,
      port: e.DCGM_PORT,
      server: { namespace: e.DCGM_SERVER_NAMESPACE, selector: e.DCGM_SERVER_SELECTOR },
      ...(e.DCGM_SOURCE === 'prometheus' && e.PROMETHEUS_URL
        ? {
            prometheus: prometheusConfig(
              e.PROMETHEUS_URL,
              e.PROMETHEUS_TIMEOUT,
              e.PROMETHEUS_SIGV4,
              e.PROMETHEUS_REGION,
              e.AWS_REGION,
            ),
          }
        : {}),
    },
    classifier: {
      mode: e.CLASSIFIER,
      bedrockModelId: e.BEDROCK_MODEL_ID ?? defaultBedrockModelIdFor(e.AWS_REGION),
      cacheTtlSeconds: e.LLM_CACHE_TTL,
      timeoutSeconds: e.LLM_TIMEOUT,
      maxCallsPerHour: e.LLM_MAX_CALLS_PER_HOUR,
    },
    remediation: {
      maxConcurrent: e.MAX_CONCURRENT_REMEDIATIONS,
      maxUnhealthyPercent: e.MAX_UNHEALTHY_PERCENT,
      maxUnhealthyNodes: e.MAX_UNHEALTHY_NODES,
      perHour: e.REMEDIATIONS_PER_HOUR,
      drainTimeoutSeconds: e.DRAIN_TIMEOUT,
      rebootTimeoutSeconds: e.REBOOT_TIMEOUT,
      replaceTimeoutSeconds: e.REPLACE_TIMEOUT,
      settleTimeoutSeconds: e.GPU_SETTLE_TIMEOUT,
      ...(e.POST_REPAIR_DIAG !== 'off' ? { postRepairDiag: Number(e.POST_REPAIR_DIAG) as DiagLevel } : {}),
      rebootGraceSeconds: e.REBOOT_GRACE,
      pollSeconds: e.REMEDIATION_POLL,
      autoRepair: e.EKS_AUTO_REPAIR,
      ...(e.EKS_AUTO_REPAIR_WINDOW !== undefined
        ? { autoRepairWindowSeconds: e.EKS_AUTO_REPAIR_WINDOW }
        : {}),
    },
    slack: {
      mode: e.SLACK_APP_TOKEN ? 'socket' : e.SLACK_BOT_TOKEN ? 'http' : 'disabled',
      botToken: e.SLACK_BOT_TOKEN,
      signingSecret: e.SLACK_SIGNING_SECRET,
      appToken: e.SLACK_APP_TOKEN,
      channel: e.SLACK_CHANNEL,
      apiUrl: e.SLACK_API_URL,
      adminUsers: e.SLACK_ADMIN_USERS,
      adminGroup: e.SLACK_ADMIN_GROUP,
    },
    notify: {
      snsTopicArn: e.SNS_TOPIC_ARN,
      webhookUrl: e.WEBHOOK_URL,
      webhookSecret: e.WEBHOOK_SECRET,
      lambdaFunction: e.LAMBDA_FUNCTION,
      cloudwatch: {
        enabled: e.CLOUDWATCH_ENABLED,
        namespace: e.CLOUDWATCH_NAMESPACE,
        perNode: e.CLOUDWATCH_PER_NODE,
      },
    },
    policyFile: e.POLICY_FILE,
    policy,
  };
  return deepFreeze(config);
}

/**
 * Where queries go and whether they are signed. `auto` signs exactly when the URL is an AMP workspace
 * (`aps-workspaces.<region>.amazonaws.com`), in the URL's region unless PROMETHEUS_REGION says otherwise.
 */
function prometheusConfig(
  url: string,
  timeoutSeconds: number,
  sigv4: PrometheusSigV4Mode,
  region: string | undefined,
  awsRegion: string,
): NonNullable<Config['dcgm']['prometheus']> {
  const hostRegion = AMP_HOST_RE.exec(new URL(url).hostname)?.[1];
  const sign = sigv4 === 'on' || (sigv4 === 'auto' && hostRegion !== undefined);
  const base = url.replace(/\/+$/, '');
  return sign
    ? { url: base, timeoutSeconds, sigv4Region: region ?? hostRegion ?? awsRegion }
    : { url: base, timeoutSeconds };
}

function redactToken(token: string | undefined): string | undefined {
  if (token === undefined) return undefined;
  const prefix = /^(xox[a-z]|xapp)-/.exec(token)?.[0] ?? '';
  return `${prefix}…(redacted)`;
}

/**
 * The effective configuration as a plain object safe to print (`gpu-medic config`): tokens keep only their
 * kind prefix, secrets become `***`. The policy is summarised, not dumped.
 */
export function redactedConfig(config: Config): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
  const slack = plain.slack as Record<string, unknown>;
  slack.botToken = redactToken(config.slack.botToken);
  slack.appToken = redactToken(config.slack.appToken);
  slack.signingSecret = config.slack.signingSecret === undefined ? undefined : '***';
  const notify = plain.notify as Record<string, unknown>;
  notify.webhookSecret = config.notify.webhookSecret === undefined ? undefined : '***';
  if (config.notify.webhookUrl) notify.webhookUrl = redactUrlCredentials(config.notify.webhookUrl);
  (plain.alertmanager as Record<string, unknown>).token =
    config.alertmanager.token === undefined ? undefined : '***';
  const aws = plain.aws as { endpoints: Record<string, string> };
  for (const [k, v] of Object.entries(aws.endpoints)) aws.endpoints[k] = redactUrlCredentials(v);
  if (config.store.databaseUrl) {
    (plain.store as Record<string, unknown>).databaseUrl = redactUrlCredentials(config.store.databaseUrl);
  }
  const prom = (plain.dcgm as { prometheus?: { url: string } }).prometheus;
  if (prom) prom.url = redactUrlCredentials(prom.url);
  return plain;
}

/** A URL may carry `user:password@` or a `?token=` query: keep the host, hide those. */
function redactUrlCredentials(u: string): string {
  try {
    const url = new URL(u);
    let changed = false;
    if (url.username || url.password) {
      url.username = '***';
      url.password = '';
      changed = true;
    }
    for (const key of [...url.searchParams.keys()]) {
      if (/token|secret|key|sig|password/i.test(key)) {
        url.searchParams.set(key, '***');
        changed = true;
      }
    }
    return changed ? url.toString() : u;
  } catch {
    return '***';
  }
}
