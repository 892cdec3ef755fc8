import { describeChatPortContract } from './chat-port-contract.js';
import { RecordingChatPort, slackIncident } from './recording-chat-port.js';

describeChatPortContract('RecordingChatPort (the listener tests’ fake)', async () => {
  const incident = slackIncident();
  return {
    port: new RecordingChatPort([incident]),
    node: incident.node,
    pendingIncidentId: incident.id,
    close: async () => {},
  };
});
