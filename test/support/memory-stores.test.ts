import { describeIncidentStoreContract } from './incident-store-contract.js';
import { MemoryIncidentStore } from './memory-stores.js';
import { Power } from './power.js';

describeIncidentStoreContract(
  'in memory (MemoryIncidentStore)',
  (now) => new MemoryIncidentStore(new Power(), now),
);
