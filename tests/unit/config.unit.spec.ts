import { ConfigError, loadConfig } from '../../app';

describe('configuration', () => {
  test('defaults: embedded PGlite on 127.0.0.1:3000', () => {
    expect(loadConfig({})).toMatchObject({
      eventStore: 'pglite',
      dataDir: './.data/pglite',
      host: '127.0.0.1',
      port: 3000,
      batchMaxCommands: 1000,
      readModelUrl: undefined,
      runProjections: true,
    });
  });

  test('DATABASE_URL selects the postgres store', () => {
    expect(loadConfig({ DATABASE_URL: 'postgresql://u@h:5432/d' })).toMatchObject({
      eventStore: 'postgres',
      databaseUrl: 'postgresql://u@h:5432/d',
    });
  });

  test.each([
    [{ PORT: 'http' }, 'invalid configuration: PORT must be an integer 1..65535, got "http"'],
    [{ PORT: '70000' }, 'invalid configuration: PORT must be an integer 1..65535, got "70000"'],
    [
      { CARBONPAY_EVENT_STORE: 'mysql' },
      'invalid configuration: CARBONPAY_EVENT_STORE must be one of pglite, postgres, memory, kurrentdb, got "mysql"',
    ],
    [
      { CARBONPAY_EVENT_STORE: 'postgres' },
      'invalid configuration: DATABASE_URL is required when CARBONPAY_EVENT_STORE=postgres, got ""',
    ],
    [
      { DATABASE_URL: 'mysql://x' },
      'invalid configuration: DATABASE_URL must start with postgresql://, got "mysql://x"',
    ],
    [
      { KURRENTDB_URL: 'http://x' },
      'invalid configuration: KURRENTDB_URL must start with kurrentdb://, got "http://x"',
    ],
    [
      { CARBONPAY_READ_MODEL_URL: 'mysql://x' },
      'invalid configuration: CARBONPAY_READ_MODEL_URL must start with postgresql://, got "mysql://x"',
    ],
    [
      { CARBONPAY_EVENT_STORE: 'kurrentdb', KURRENTDB_URL: 'kurrentdb://h:2113' },
      'invalid configuration: CARBONPAY_READ_MODEL_URL is required when CARBONPAY_EVENT_STORE=kurrentdb, got ""',
    ],
    [{ CARBONPAY_PROJECTIONS: 'yes' }, 'invalid configuration: CARBONPAY_PROJECTIONS must be on or off, got "yes"'],
    [
      { HOST: '0.0.0.0' },
      'invalid configuration: HOST may be a non-loopback address only with CARBONPAY_TLS_CERT and CARBONPAY_TLS_KEY, got "0.0.0.0"',
    ],
    [{ CARBONPAY_AUTH: 'maybe' }, 'invalid configuration: CARBONPAY_AUTH must be required or off, got "maybe"'],
    [{ REDIS_URL: 'http://x' }, 'invalid configuration: REDIS_URL must start with redis://, got "http://x"'],
    [
      { CARBONPAY_ROLE_ALLOWED_IPS: '{"king":["10.0.0.0/8"]}' },
      'invalid configuration: CARBONPAY_ROLE_ALLOWED_IPS names an unknown role king',
    ],
    [
      { CARBONPAY_ROLE_ALLOWED_IPS: '{"auditor":["10.0.0.0/40"]}' },
      'invalid configuration: CARBONPAY_ROLE_ALLOWED_IPS bad prefix length in',
    ],
    [
      { CARBONPAY_BATCH_MAX_COMMANDS: '0' },
      'invalid configuration: CARBONPAY_BATCH_MAX_COMMANDS must be an integer 1..1000, got "0"',
    ],
  ])('%j is refused with one clear line', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
