// The public face of app/: the composition root (configuration, CLI, server).
export { main } from './cli';
export { runAudit } from './commands/audit';
export { runCrypto } from './commands/crypto';
export { runKeys } from './commands/keys';
export { runOperators } from './commands/operators';
export { runDecode } from './commands/decode';
export { runClearing, openClearing, CLEARING_EXIT } from './commands/clearing';
export {
  runBackup,
  runRestore,
  takeBackup,
  restoreBackups,
  verifyBackupFolder,
  ledgerChecksums,
  serviceTableChecksums,
  BackupError,
} from './commands/backup';
export {
  runArchive,
  archiveMonths,
  readArchivedStatement,
  readArchivedJournal,
  statementFromArchivedEvents,
  monthFolders,
  verifyMonthFolder,
} from './commands/archive';
export { ConfigError, CONFIG_VARIABLES, loadConfig } from './config';
export type { Config, EventStoreKind } from './config';
export { openEventStore, startLedger, startReadModels } from './platform';
export type { ReadModels } from './platform';
export { createPlatformApi, listenPlatform, protectPersonalData } from './server';
export type { PlatformServices } from './server';
