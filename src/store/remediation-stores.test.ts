import { describeIncidentStoreContract } from '../../test/support/incident-store-contract.js';
import { incidentStore } from './remediation-stores.js';
import { openStore } from './store.js';

describeIncidentStoreContract('SQLite (incidentStore over openStore)', (now) => {
  const store = openStore(':memory:', { now });
  return Object.assign(incidentStore(store), { close: () => store.close() });
});
