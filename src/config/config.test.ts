import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactedConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'gpu-medic-config-'));
const noNamespaceFile = join(dir, 'absent-namespace');
const load = (env: Record<string, string>) => loadConfig(env, { namespaceFile: noNamespaceFile });

function problemsOf(env: Record<string, string>): string[] {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadConfig defaults', () => {
  it('gives a complete, frozen config from an empty environment', () => {
    const c = load({});
    expect(c.clusterName).toBe('eks-gpu-cluster');
    expect(c.aws.region).toBe('us-east-1');
    expect(c.monitor).toEqual({ intervalSeconds: 60, scanConcurrency: 32, scanTimeoutSeconds: 10 });
    expect(c.log.level).toBe('info');
    expect(c.store.dbPath).toBe('./data/gpu-medic.db');
    expect(c.http.port).toBe(3000);
    expect(c.dryRun).toBe(false);
    expect(c.kube.kubeconfig).toBeUndefined();
    expect(c.kube.podNamespace).toBe('gpu-medic');
    expect(c.leader).toEqual({
      leaseName: 'gpu-medic-leader',
      namespace: 'gpu-medic',
      leaseDurationSeconds: 15,
      renewSeconds: 5,
      requestPollSeconds: 1,
    });
    expect(c.dcgm).toMatchObject({ source: 'auto', access: 'proxy', port: 9400 });
    expect(c.classifier).toEqual({
      mode: 'hybrid',
      // Claude 3.7 Sonnet reached end of life on Bedrock (2026-04-28): an active model is the default.
      bedrockModelId: 'us.anthropic.claude-sonnet-4-6',
      cacheTtlSeconds: 86400,
      timeoutSeconds: 20,
      maxCallsPerHour: 60,
    });
    expect(c.remediation).toMatchObject({
      maxConcurrent: 1,
      maxUnhealthyPercent: 20,
      perHour: 5,
      drainTimeoutSeconds: 900,
      settleTimeoutSeconds: 900,
    });
    expect(c.remediation.maxUnhealthyNodes).toBeUndefined();
    expect(c.slack.mode).toBe('disabled');
    expect(c.slack.adminUsers).toEqual([]);
    expect(c.notify.cloudwatch).toEqual({ enabled: true, namespace: 'GPUMedic', perNode: false });
    expect(c.policy.classification.thermalWarningC).toBe(87);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.slack)).toBe(true);
    expect(Object.isFrozen(c.policy.classification)).toBe(true);
  });

  it.each([
    ['us-east-1', 'us.anthropic.claude-sonnet-4-6'],
    ['us-west-2', 'us.anthropic.claude-sonnet-4-6'],
    ['eu-west-1', 'eu.anthropic.claude-sonnet-4-6'],
    ['eu-central-2', 'eu.anthropic.claude-sonnet-4-6'],
    ['ap-northeast-1', 'jp.anthropic.claude-sonnet-4-6'],
    ['ap-northeast-3', 'jp.anthropic.claude-sonnet-4-6'],
    // Sonnet 4.6 has no apac profile: the rest of Asia-Pacific goes through the global one.
    ['ap-southeast-2', 'global.anthropic.claude-sonnet-4-6'],
    ['ap-south-1', 'global.anthropic.claude-sonnet-4-6'],
    ['ca-central-1', 'global.anthropic.claude-sonnet-4-6'],
    ['sa-east-1', 'global.anthropic.claude-sonnet-4-6'],
    ['me-central-1', 'global.anthropic.claude-sonnet-4-6'],
    ['us-gov-west-1', 'global.anthropic.claude-sonnet-4-6'],
  ])('defaults BEDROCK_MODEL_ID in %s to %s', (region, model) => {
    expect(load({ AWS_REGION: region }).classifier.bedrockModelId).toBe(model);
  });

  it('keeps an explicit BEDROCK_MODEL_ID whatever the region', () => {
    const c = load({ AWS_REGION: 'eu-west-1', BEDROCK_MODEL_ID: ' us.anthropic.claude-opus-4-6-v1 ' });
    expect(c.classifier.bedrockModelId).toBe('us.anthropic.claude-opus-4-6-v1');
    expect(load({ AWS_REGION: 'eu-west-1', BEDROCK_MODEL_ID: '' }).classifier.bedrockModelId).toBe(
      'eu.anthropic.claude-sonnet-4-6',
    );
  });

  it('treats empty strings as unset', () => {
    expect(load({ MONITOR_INTERVAL: '', SLACK_BOT_TOKEN: '' }).monitor.intervalSeconds).toBe(60);
  });

  it('reads the pod namespace from the service-account file when POD_NAMESPACE is unset', () => {
    const f = join(dir, 'namespace');
    writeFileSync(f, 'gpu-ops\n');
    expect(loadConfig({}, { namespaceFile: f }).leader.namespace).toBe('gpu-ops');
    expect(loadConfig({ POD_NAMESPACE: 'other' }, { namespaceFile: f }).kube.podNamespace).toBe('other');
  });

  it('reads the pod name (the leader identity) from POD_NAME, unset outside Kubernetes', () => {
    expect(load({}).kube.podName).toBeUndefined();
    expect(load({ POD_NAME: 'gpu-medic-7d9f8-x2x4z' }).kube.podName).toBe('gpu-medic-7d9f8-x2x4z');
  });

  it('parses every typed variable', () => {
    const c = load({
      MONITOR_INTERVAL: '15.5',
      DRY_RUN: 'YES',
      PORT: '0',
      LOG_LEVEL: 'silent',
      DCGM_SOURCE: 'dcgm-server',
      DCGM_ACCESS: 'direct',
      DCGM_NAMESPACE: 'gpu-operator',
      DCGM_SERVER_NAMESPACE: 'eks-node-monitoring',
      DCGM_SERVER_SELECTOR: 'k8s-app=dcgm-server,version=v1',
      SCAN_CONCURRENCY: '64',
      CLASSIFIER: 'rules',
      MAX_UNHEALTHY_NODES: '3',
      CLOUDWATCH_PER_NODE: '1',
      SLACK_ADMIN_USERS: 'U012AB, W99ZZ ,U012AB',
      SNS_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:gpu-alerts',
      LAMBDA_FUNCTION: 'arn:aws:lambda:us-west-2:123456789012:function:gpu-hook:prod',
      SLACK_API_URL: 'http://127.0.0.1:4000/api',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
      AWS_ENDPOINT_URL_EC2: 'http://127.0.0.1:4567',
    });
    expect(c.monitor.intervalSeconds).toBe(15.5);
    expect(c.dryRun).toBe(true);
    expect(c.http.port).toBe(0);
    expect(c.dcgm).toEqual({
      source: 'dcgm-server',
      access: 'direct',
      namespace: 'gpu-operator',
      port: 9400,
      selector: undefined,
      server: { namespace: 'eks-node-monitoring', selector: 'k8s-app=dcgm-server,version=v1' },
    });
    expect(load({}).dcgm.server).toEqual({ namespace: undefined, selector: undefined });
    expect(c.remediation.maxUnhealthyNodes).toBe(3);
    expect(c.notify.cloudwatch.perNode).toBe(true);
    expect(c.slack.adminUsers).toEqual(['U012AB', 'W99ZZ']);
    expect(c.slack.apiUrl).toBe('http://127.0.0.1:4000/api/');
    expect(c.aws.endpoints).toEqual({
      AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
      AWS_ENDPOINT_URL_EC2: 'http://127.0.0.1:4567',
    });
  });

  it.each([
    ['true', true],
    ['false', false],
    ['1', true],
    ['0', false],
    ['yes', true],
    ['no', false],
    ['TRUE', true],
  ])('DRY_RUN=%s ⇒ %s', (v, expected) => {
    expect(load({ DRY_RUN: v }).dryRun).toBe(expected);
  });
});

describe('loadConfig errors', () => {
  it.each([
    ['MONITOR_INTERVAL', 'abc', "MONITOR_INTERVAL: expected a positive number, got 'abc'"],
    ['MONITOR_INTERVAL', '0', "MONITOR_INTERVAL: expected a positive number, got '0'"],
    ['MONITOR_INTERVAL', '-5', "MONITOR_INTERVAL: expected a positive number, got '-5'"],
    ['MONITOR_INTERVAL', '0x10', "MONITOR_INTERVAL: expected a positive number, got '0x10'"],
    ['PORT', '70000', "PORT: expected an integer from 0 to 65535, got '70000'"],
    ['PORT', '80.5', "PORT: expected an integer from 0 to 65535, got '80.5'"],
    ['SCAN_CONCURRENCY', '0', "SCAN_CONCURRENCY: expected an integer ≥ 1, got '0'"],
    ['MAX_UNHEALTHY_PERCENT', '120', "MAX_UNHEALTHY_PERCENT: expected a number from 0 to 100, got '120'"],
    ['MAX_UNHEALTHY_NODES', '-1', "MAX_UNHEALTHY_NODES: expected a non-negative integer, got '-1'"],
    ['DRY_RUN', 'maybe', "DRY_RUN: expected true/false/1/0/yes/no, got 'maybe'"],
    ['LOG_LEVEL', 'verbose', 'LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent'],
    ['DCGM_SOURCE', 'nvml', 'DCGM_SOURCE: expected one of auto, exporter, dcgm-server, prometheus'],
    ['PROMETHEUS_URL', 'prom:9090', 'PROMETHEUS_URL: expected a http or https URL'],
    ['PROMETHEUS_SIGV4', 'yes', 'PROMETHEUS_SIGV4: expected one of auto, on, off'],
    ['PROMETHEUS_REGION', 'east', 'PROMETHEUS_REGION: expected an AWS region'],
    ['PROMETHEUS_TIMEOUT', '0', 'PROMETHEUS_TIMEOUT: expected a positive number'],
    ['DCGM_ACCESS', 'ssh', 'DCGM_ACCESS: expected one of proxy, direct'],
    ['DCGM_SERVER_NAMESPACE', 'Kube_System', 'DCGM_SERVER_NAMESPACE: expected a Kubernetes namespace name'],
    ['CLASSIFIER', 'gpt', 'CLASSIFIER: expected one of rules, hybrid, llm'],
    ['AWS_REGION', 'useast1', 'AWS_REGION: expected an AWS region'],
    ['SNS_TOPIC_ARN', 'arn:aws:sqs:us-east-1:123456789012:q', 'SNS_TOPIC_ARN: expected an SNS topic ARN'],
    ['WEBHOOK_URL', 'not a url', "WEBHOOK_URL: expected a URL, got 'not a url'"],
    ['WEBHOOK_URL', 'ftp://example.com/x', 'WEBHOOK_URL: expected a http or https URL'],
    ['SLACK_API_URL', '::', 'SLACK_API_URL: expected a URL'],
    [
      'SLACK_ADMIN_USERS',
      'U01,alice',
      "SLACK_ADMIN_USERS: expected a comma-separated list of Slack user ids (U…), got 'alice'",
    ],
    ['SLACK_ADMIN_GROUP', 'admins', 'SLACK_ADMIN_GROUP: expected a Slack user group id'],
    ['LAMBDA_FUNCTION', 'bad name!', 'LAMBDA_FUNCTION: expected a Lambda function name or ARN'],
    ['CLOUDWATCH_NAMESPACE', 'AWS/EC2', 'CLOUDWATCH_NAMESPACE: expected a CloudWatch namespace'],
    ['POD_NAMESPACE', 'Bad_NS', 'POD_NAMESPACE: expected a Kubernetes namespace name'],
    ['POD_NAME', 'Pod Name', 'POD_NAME: expected a Kubernetes pod name'],
    ['DCGM_SERVER_NAMESPACE', 'Kube System', 'DCGM_SERVER_NAMESPACE: expected a Kubernetes namespace name'],
    ['AWS_ENDPOINT_URL_SNS', 'nope', 'AWS_ENDPOINT_URL_SNS: expected a URL'],
    ['CLOUDWATCH_PER_NODE', 'si', 'CLOUDWATCH_PER_NODE: expected true/false/1/0/yes/no'],
    ['EKS_AUTO_REPAIR', 'on', 'EKS_AUTO_REPAIR: expected one of detect, defer, ignore'],
    ['EKS_AUTO_REPAIR_WINDOW', '0', 'EKS_AUTO_REPAIR_WINDOW: expected'],
  ])('%s=%s is refused', (name, value, message) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(message);
  });

  it('DCGM_SOURCE=prometheus needs PROMETHEUS_URL, signs AMP workspace URLs for their region', () => {
    expect(problemsOf({ DCGM_SOURCE: 'prometheus' })).toEqual([
      expect.stringMatching(/^PROMETHEUS_URL: required when DCGM_SOURCE=prometheus/),
    ]);
    const plain = load({ DCGM_SOURCE: 'prometheus', PROMETHEUS_URL: 'http://prometheus.monitoring:9090/' });
    expect(plain.dcgm.prometheus).toEqual({ url: 'http://prometheus.monitoring:9090', timeoutSeconds: 10 });
    const amp = 'https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-0123abcd-4567-89ef';
    expect(
      load({ DCGM_SOURCE: 'prometheus', PROMETHEUS_URL: amp, PROMETHEUS_TIMEOUT: '4' }).dcgm.prometheus,
    ).toEqual({
      url: amp,
      timeoutSeconds: 4,
      sigv4Region: 'eu-west-1',
    });
    expect(
      load({ DCGM_SOURCE: 'prometheus', PROMETHEUS_URL: amp, PROMETHEUS_SIGV4: 'off' }).dcgm.prometheus,
    ).toEqual({
      url: amp,
      timeoutSeconds: 10,
    });
    // A proxy in front of AMP: signing on, region from PROMETHEUS_REGION (else AWS_REGION).
    const proxied = {
      DCGM_SOURCE: 'prometheus',
      PROMETHEUS_URL: 'http://amp-proxy:8005',
      PROMETHEUS_SIGV4: 'on',
    };
    expect(load({ ...proxied, PROMETHEUS_REGION: 'us-west-2' }).dcgm.prometheus?.sigv4Region).toBe(
      'us-west-2',
    );
    expect(load({ ...proxied, AWS_REGION: 'ap-south-1' }).dcgm.prometheus?.sigv4Region).toBe('ap-south-1');
    // The other sources carry no Prometheus settings, even when the URL is set.
    expect(load({ PROMETHEUS_URL: 'http://p:9090' }).dcgm.prometheus).toBeUndefined();
  });

  it('reads POST_REPAIR_DIAG: level 1 by default, 2 or 3, off; anything else is a clear error', () => {
    expect(load({}).remediation.postRepairDiag).toBe(1);
    expect(load({ POST_REPAIR_DIAG: '3' }).remediation.postRepairDiag).toBe(3);
    expect(load({ POST_REPAIR_DIAG: 'OFF' }).remediation.postRepairDiag).toBeUndefined();
    expect(problemsOf({ POST_REPAIR_DIAG: '4' })[0]).toMatch(
      /^POST_REPAIR_DIAG: expected one of off, 1, 2, 3/,
    );
  });

  it('reads GPU_SETTLE_TIMEOUT in seconds and refuses a non-positive one', () => {
    expect(load({ GPU_SETTLE_TIMEOUT: '1.5' }).remediation.settleTimeoutSeconds).toBe(1.5);
    expect(problemsOf({ GPU_SETTLE_TIMEOUT: '0' })[0]).toMatch(/^GPU_SETTLE_TIMEOUT: /);
    expect(problemsOf({ GPU_SETTLE_TIMEOUT: 'soon' })[0]).toMatch(/^GPU_SETTLE_TIMEOUT: /);
  });

  it('lists every bad variable at once, by name', () => {
    const problems = problemsOf({ MONITOR_INTERVAL: 'abc', PORT: '-1', DRY_RUN: 'maybe', LOG_LEVEL: 'loud' });
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'DRY_RUN',
      'LOG_LEVEL',
      'MONITOR_INTERVAL',
      'PORT',
    ]);
    try {
      load({ MONITOR_INTERVAL: 'abc', PORT: '-1' });
    } catch (err) {
      expect((err as Error).message).toMatch(/MONITOR_INTERVAL: expected a positive number, got 'abc'/);
      expect((err as Error).message).toMatch(/PORT: /);
      expect((err as Error).message).not.toMatch(/invalid_type|"code"/);
    }
  });

  it('never echoes a secret in an error', () => {
    const problems = problemsOf({ SLACK_BOT_TOKEN: 'hunter2-super-secret', SLACK_CHANNEL: 'C123' });
    expect(problems.join('\n')).toContain('SLACK_BOT_TOKEN: expected a Slack bot token');
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('requires a signing secret in HTTP mode and a channel with a bot token', () => {
    const problems = problemsOf({ SLACK_BOT_TOKEN: 'xoxb-1-2-abc' });
    expect(problems).toEqual([
      expect.stringMatching(/^SLACK_SIGNING_SECRET: required in HTTP mode/),
      expect.stringMatching(/^SLACK_CHANNEL: required when SLACK_BOT_TOKEN is set/),
    ]);
  });

  it('refuses a lease renewed no faster than it expires', () => {
    expect(problemsOf({ LEASE_DURATION: '10', LEASE_RENEW: '10' })).toEqual([
      expect.stringMatching(/^LEASE_RENEW: must be shorter than LEASE_DURATION \(10s\)/),
    ]);
    const c = load({ LEASE_DURATION: '4', LEASE_RENEW: '1', REBOOT_GRACE: '20', REMEDIATION_POLL: '0.5' });
    expect(c.leader).toMatchObject({ leaseDurationSeconds: 4, renewSeconds: 1 });
    expect(c.remediation).toMatchObject({ rebootGraceSeconds: 20, pollSeconds: 0.5 });
  });

  it('needs no signing secret in Socket Mode', () => {
    const c = load({
      SLACK_BOT_TOKEN: 'xoxb-1-2-abc',
      SLACK_APP_TOKEN: 'xapp-1-A-1-z',
      SLACK_CHANNEL: 'C0123',
    });
    expect(c.slack.mode).toBe('socket');
  });

  it('selects HTTP mode with a bot token and a signing secret', () => {
    const c = load({
      SLACK_BOT_TOKEN: 'xoxb-1-2-abc',
      SLACK_SIGNING_SECRET: 'abcdef0123456789',
      SLACK_CHANNEL: '#gpu-alerts',
    });
    expect(c.slack.mode).toBe('http');
  });

  it('refuses an app token without a bot token', () => {
    expect(problemsOf({ SLACK_APP_TOKEN: 'xapp-1-A-1-z' })).toEqual([
      expect.stringMatching(/^SLACK_BOT_TOKEN: required when SLACK_APP_TOKEN is set/),
    ]);
  });

  it('loads the policy file and reports its problems under POLICY_FILE', () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, 'classification:\n  thermalWarningC: 80\n');
    expect(load({ POLICY_FILE: good }).policy.classification.thermalWarningC).toBe(80);
    const problems = problemsOf({ POLICY_FILE: join(dir, 'missing.yaml'), PORT: 'x' });
    expect(problems).toContainEqual(
      expect.stringMatching(/^POLICY_FILE: policy file .*missing\.yaml: file not found/),
    );
    expect(problems).toContainEqual(expect.stringMatching(/^PORT: /));
  });
});

describe('redactedConfig', () => {
  it('hides tokens and secrets but shows endpoints', () => {
    const c = load({
      SLACK_BOT_TOKEN: 'xoxb-111-222-secretpart',
      SLACK_APP_TOKEN: 'xapp-1-A1-secretapp',
      SLACK_SIGNING_SECRET: 'abcdef0123456789abcdef',
      SLACK_CHANNEL: 'C0123',
      WEBHOOK_URL: 'https://user:pw@hooks.example.com/x?token=abc123&team=a',
      WEBHOOK_SECRET: 'whsec-very-secret',
      AWS_ENDPOINT_URL_EC2: 'http://127.0.0.1:4567',
    });
    const r = redactedConfig(c);
    const text = JSON.stringify(r);
    expect(text).not.toMatch(/secretpart|secretapp|abcdef0123456789abcdef|very-secret|abc123|:pw@/);
    expect(r.slack).toMatchObject({
      botToken: 'xoxb-…(redacted)',
      appToken: 'xapp-…(redacted)',
      signingSecret: '***',
      channel: 'C0123',
    });
    expect(r.notify).toMatchObject({ webhookSecret: '***' });
    expect((r.notify as { webhookUrl: string }).webhookUrl).toContain('hooks.example.com');
    expect(r.aws).toEqual({
      region: 'us-east-1',
      endpoints: { AWS_ENDPOINT_URL_EC2: 'http://127.0.0.1:4567' },
    });
  });
});

describe('EKS node auto repair settings', () => {
  it('defaults to detect with the documented windows, and reads defer/ignore and a window in seconds', () => {
    expect(load({}).remediation).toMatchObject({ autoRepair: 'detect' });
    expect(load({}).remediation.autoRepairWindowSeconds).toBeUndefined();
    expect(load({ EKS_AUTO_REPAIR: 'defer', EKS_AUTO_REPAIR_WINDOW: '900' }).remediation).toMatchObject({
      autoRepair: 'defer',
      autoRepairWindowSeconds: 900,
    });
    expect(load({ EKS_AUTO_REPAIR: 'ignore' }).remediation.autoRepair).toBe('ignore');
  });
});

describe('Alertmanager receiver settings', () => {
  it('is off without a token, reads one, refuses a short one without echoing it, and redacts it', () => {
    expect(load({}).alertmanager.token).toBeUndefined();
    const token = 'am-0123456789abcdef-secret';
    const c = load({ ALERTMANAGER_TOKEN: token });
    expect(c.alertmanager.token).toBe(token);
    expect(JSON.stringify(redactedConfig(c))).not.toContain(token);
    expect(redactedConfig(c).alertmanager).toEqual({ token: '***' });
    const problems = problemsOf({ ALERTMANAGER_TOKEN: 'short-s3cret' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^ALERTMANAGER_TOKEN: expected a token of at least 16 printable characters/);
    expect(problems[0]).not.toContain('short-s3cret');
  });
});

describe('GPU reset pod settings', () => {
  it('default to the dcgm-server pods and a 3-minute timeout; RESET_POD_* override them', () => {
    const base = load({});
    expect(base.reset).toEqual({
      namespace: undefined,
      selector: undefined,
      container: undefined,
      timeoutSeconds: 180,
    });
    const fromDcgm = load({ DCGM_SERVER_NAMESPACE: 'gpu-operator', DCGM_SERVER_SELECTOR: 'app=nvidia-dcgm' });
    expect(fromDcgm.reset).toMatchObject({ namespace: 'gpu-operator', selector: 'app=nvidia-dcgm' });
    const own = load({
      DCGM_SERVER_NAMESPACE: 'kube-system',
      RESET_POD_NAMESPACE: 'gpu-operator',
      RESET_POD_SELECTOR: 'app=nvidia-driver-daemonset',
      RESET_POD_CONTAINER: 'nvidia-driver-ctr',
      RESET_TIMEOUT: '60',
    });
    expect(own.reset).toEqual({
      namespace: 'gpu-operator',
      selector: 'app=nvidia-driver-daemonset',
      container: 'nvidia-driver-ctr',
      timeoutSeconds: 60,
    });
  });

  it('a bad value is a clear error', () => {
    expect(() => load({ RESET_POD_NAMESPACE: 'Not_A_Namespace' })).toThrow(/RESET_POD_NAMESPACE/);
    expect(() => load({ RESET_TIMEOUT: '0' })).toThrow(/RESET_TIMEOUT/);
  });
});

describe('DATABASE_URL', () => {
  it('unset keeps SQLite at DB_PATH; a postgres URL selects PostgreSQL for CLUSTER_NAME', () => {
    expect(load({}).store).toEqual({ dbPath: './data/gpu-medic.db', cluster: 'eks-gpu-cluster' });
    const url = 'postgres://medic:s3cret@db.example.internal:5432/gpu_medic?sslmode=verify-full';
    const c = load({ DATABASE_URL: url, CLUSTER_NAME: 'prod-a' });
    expect(c.store).toEqual({ dbPath: './data/gpu-medic.db', databaseUrl: url, cluster: 'prod-a' });
    expect(load({ DATABASE_URL: 'postgresql://h/db' }).store.databaseUrl).toBe('postgresql://h/db');
  });

  it('refuses another kind of URL, never echoing it (it carries the password)', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://medic:s3cret@db/gpu' });
    expect(problems).toEqual([
      expect.stringMatching(
        /^DATABASE_URL: expected a postgres:\/\/ or postgresql:\/\/ URL.*got a mysql:\/\/ URL$/,
      ),
    ]);
    expect(problems.join()).not.toContain('s3cret');
    expect(problemsOf({ DATABASE_URL: 's3cret-not-a-url' }).join()).not.toContain('s3cret');
  });

  it('is printed without its password', () => {
    const c = load({ DATABASE_URL: 'postgres://medic:s3cret@db:5432/gpu' });
    expect(JSON.stringify(redactedConfig(c))).not.toContain('s3cret');
    expect((redactedConfig(c).store as { databaseUrl: string }).databaseUrl).toBe(
      'postgres://***@db:5432/gpu',
    );
  });
});
