import { openPostgresEventStore } from '../../core-ledger';
import { createTestDatabase } from '../support/databases';
import { describeEventStoreContract } from './event-store.contract';

let drop: (() => Promise<void>) | undefined;
afterAll(async () => drop?.());

describeEventStoreContract('postgres', async () => {
  const database = await createTestDatabase('contract');
  drop = database.drop;
  return openPostgresEventStore({ connectionString: database.url });
});
