import { describe, expect, it } from 'vitest';
import { RecordingChatPort } from '../../../../test/support/recording-chat-port.js';
import { createAuthorizer } from '../../authz.js';
import { handleGpuCommand } from './handle-gpu-command.js';

const admin = 'UADMIN0001';

describe('/gpu on an EKS Auto Mode node', () => {
  it('`/gpu reboot` answers why not at once: no confirmation, no service call', async () => {
    const chat = new RecordingChatPort();
    const node = [...chat.nodes][0] ?? '';
    chat.autoModeNodes.add(node);
    const reply = await handleGpuCommand(`reboot ${node}`, admin, {
      chat,
      authz: createAuthorizer({ adminUsers: [admin] }),
    });
    expect(reply.confirm).toBeUndefined();
    expect(reply.message.text).toMatch(/EKS Auto Mode node.*cannot be rebooted through the EC2 API/);
    expect(chat.callsOf('requestManual')).toHaveLength(0);
  });

  it('`/gpu replace` still asks for confirmation, and `/gpu status` notes that reboot is not offered', async () => {
    const chat = new RecordingChatPort();
    const node = [...chat.nodes][0] ?? '';
    chat.autoModeNodes.add(node);
    const deps = { chat, authz: createAuthorizer({ adminUsers: [admin] }) };
    expect((await handleGpuCommand(`replace ${node}`, admin, deps)).confirm).toMatchObject({
      kind: 'replace',
    });
    const status = await handleGpuCommand(`status ${node}`, admin, deps);
    expect(JSON.stringify(status.message.blocks)).toMatch(/Reboot not offered/);
  });
});
