/**
 * pos-gateway: the ISO 8583 (UnionPay-style) door for POS terminals. The public face; other folders import only this.
 *
 * The ledger wiring supplies a `PosHandler` to `createPosServer` and uses the pure helpers below (field sets,
 * composites, MAC, PIN block, key download, response codes) to decide and build replies.
 */
export { type Result, ok, err, PosGatewayError } from './result';
export * from './spec';
export {
  type PosMessage,
  type FieldValue,
  type CodecError,
  type CodecErrorCode,
  packMessage,
  unpackMessage,
  packField,
  unpackField,
  describeMessage,
  MAX_PRIMARY_FIELD,
  MAX_FIELD,
} from './codec';
export { digitsToBcd, bcdToDigits } from './bcd';
export {
  type CompositeError,
  type Subfields,
  type BatchUploadItem,
  composeField,
  decomposeField,
  composeBatchUpload,
  decomposeBatchUpload,
} from './composite';
export { type FieldSetCheck, responseMtiOf, identifyTransaction, checkFieldSet } from './field-sets';
export {
  type Tpdu,
  type FrameHeader,
  type PosFrame,
  type FrameError,
  type FrameErrorCode,
  type SplitResult,
  LENGTH_PREFIX_BYTES,
  TPDU_BYTES,
  HEADER_BYTES,
  MAX_FRAME_PAYLOAD_BYTES,
  swapTpdu,
  tpduToBytes,
  tpduFromBytes,
  headerToBytes,
  headerFromBytes,
  encodeFrame,
  decodeFramePayload,
  FrameSplitter,
} from './frame';
export {
  type BlockAlgorithm,
  BLOCK_BYTES,
  ecbEncrypt,
  ecbDecrypt,
  keyCheckValue,
  withOddParity,
  xorBytes,
} from './block-cipher';
export {
  type MacScheme,
  type MacKey,
  type MacError,
  type MacErrorCode,
  MAC_FIELD,
  MAC_FIELD_BYTES,
  cupEcbMac,
  x919RetailMac,
  x99CbcMac,
  macBlockOf,
  computeMac,
  signMessage,
  verifyMessageMac,
  verifyReceivedMac,
} from './mac';
export {
  type PinBlockError,
  type PinBlockErrorCode,
  PIN_BLOCK_BYTES,
  encodePinBlockFormat0,
  decodePinBlockFormat0,
  encryptPinBlock,
  decryptPinBlock,
  recoverPin,
  panFromTrack2,
} from './pin-block';
export {
  type WorkingKeys,
  type KeyDownloadError,
  KCV_BYTES,
  keyDownloadLayout,
  generateWorkingKeys,
  encodeKeyDownload,
  decodeKeyDownload,
  decryptKeyUnder,
  encryptKeyUnder,
} from './key-download';
export {
  type ResponseCode,
  type ResponseCodeName,
  type TerminalAction,
  RESPONSE_CODES,
  describeResponseCode,
} from './response-codes';
export {
  type PosHandler,
  type ConnectionInfo,
  type PosServer,
  type PosServerOptions,
  type PosServerStats,
  type PosServerEvent,
  type PosServerEventType,
  createPosServer,
  errorReply,
} from './server';
export {
  type TerminalClientOptions,
  type TerminalError,
  type TerminalErrorCode,
  DEFAULT_TPDU,
  DEFAULT_HEADER,
  PosTerminalClient,
} from './terminal-client';

// ---- the ledger wiring (issue #9): terminals and their keys, the journal, the handler, the simulator ----
export { AMOUNT_FEN_DIGITS, fenToYuan, yuanToFen, isZeroFen } from './amount-fen';
export { LEDGER_RESPONSE_CODES, REFUSAL_RESPONSE_CODES, responseCodeOfRefusal } from './refusal-codes';
export {
  type TerminalKeyScheme,
  type TerminalRegistration,
  type TerminalState,
  TERMINAL_KEY_SCHEMES,
  TERMINALS_SQL,
  KEY_FIELDS,
  FIRST_BATCH,
  TerminalRegistry,
  generateMasterKey,
  layoutOf,
  nextBatch,
} from './terminals';
export {
  type JournalEntry,
  type JournalKind,
  type BatchTotals,
  type UploadFinding,
  POS_JOURNAL_SQL,
  PosJournal,
} from './pos-journal';
export {
  type PosServiceOptions,
  type PosServiceDependencies,
  PosLedgerService,
  orderIdOf,
  idempotencyKeyOf,
  retrievalReferenceOf,
  authorizationCodeOf,
} from './pos-service';
export { type TerminalSimulatorOptions, type SimulatorReply, type TerminalSale, TerminalSimulator } from './simulator';
export { type FuzzKind, type FuzzFrame, type FuzzRunResult, FrameFuzzer, runFuzz, seededRandom } from './frame-fuzzer';
