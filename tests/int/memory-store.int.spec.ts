import { InMemoryEventStore } from '../../core-ledger';
import { describeEventStoreContract } from './event-store.contract';

describeEventStoreContract('memory', async () => new InMemoryEventStore());
