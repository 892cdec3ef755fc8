/** slack-manifest.yml: the /gpu command, interactivity, App Home, Socket Mode and the bot scopes. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { arr, obj } from './support/manifests.js';
import { repoRoot } from './support/rbac.js';

// ---- Slack app manifest -----------------------------------------------------------------------------

describe('slack-manifest.yml', () => {
  const manifest = obj(parseYaml(readFileSync(`${repoRoot}/slack-manifest.yml`, 'utf8')), 'slack manifest');
  const features = obj(manifest.features, 'features');
  const settings = obj(manifest.settings, 'settings');

  it('defines the /gpu command with a usage hint', () => {
    const cmd = obj(arr(features.slash_commands, 'slash_commands')[0], 'command');
    expect(cmd.command).toBe('/gpu');
    expect(String(cmd.usage_hint)).toContain('status');
    expect(String(cmd.usage_hint)).toContain('exclude <node>');
    expect(cmd.description).toBeTruthy();
  });

  it('turns on interactivity, the App Home tab and Socket Mode', () => {
    expect(obj(settings.interactivity, 'interactivity').is_enabled).toBe(true);
    expect(settings.socket_mode_enabled).toBe(true);
    expect(obj(features.app_home, 'app_home').home_tab_enabled).toBe(true);
    expect(obj(settings.event_subscriptions, 'events').bot_events).toEqual(['app_home_opened']);
    expect(obj(features.bot_user, 'bot_user').display_name).toBe('gpu-medic');
    expect(obj(manifest.display_information, 'display').name).toBe('gpu-medic');
  });

  it('asks for the bot scopes the app uses and no more', () => {
    const scopes = obj(obj(manifest.oauth_config, 'oauth').scopes, 'scopes');
    expect([...arr(scopes.bot, 'bot scopes')].sort()).toEqual([
      'chat:write',
      'commands',
      'files:write',
      'usergroups:read',
    ]);
    expect(scopes.user).toBeUndefined();
  });
});
