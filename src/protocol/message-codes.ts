// Message type bytes of the PostgreSQL frontend/backend protocol v3 ("Message
// Formats" in the protocol chapter) and of the CopyData payloads used by
// replication: BASE_BACKUP (15+) and START_REPLICATION. Named, never bare numbers.

export const BackendCode = {
  Authentication: 0x52, // 'R': Int32 request (0 = AuthenticationOk)
  BackendKeyData: 0x4b, // 'K': Int32 process id, Int32 secret key
  CommandComplete: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyOutResponse: 0x48, // 'H'
  CopyBothResponse: 0x57, // 'W'
  CopyInResponse: 0x47, // 'G'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ErrorResponse: 0x45, // 'E'
  NoticeResponse: 0x4e, // 'N'
  ParameterStatus: 0x53, // 'S'
  ReadyForQuery: 0x5a, // 'Z'
  RowDescription: 0x54, // 'T'
} as const;

export const FrontendCode = {
  Query: 0x51, // 'Q'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  Terminate: 0x58, // 'X'
} as const;

/** First byte of a CopyData payload during BASE_BACKUP on servers 15 and later. */
export const BaseBackupCopyKind = {
  NewArchive: 0x6e, // 'n': archive name, tablespace path (both C strings)
  ManifestStart: 0x6d, // 'm'
  Data: 0x64, // 'd': archive or manifest bytes follow
  Progress: 0x70, // 'p': Int64 bytes done so far (server-side count)
} as const;

/** First byte of a CopyData payload during START_REPLICATION. */
export const ReplicationCopyKind = {
  XLogData: 0x77, // 'w' (server → client)
  PrimaryKeepalive: 0x6b, // 'k' (server → client)
  StandbyStatusUpdate: 0x72, // 'r' (client → server)
} as const;

/** Error and Notice Message Fields (protocol chapter "Error and Notice Message Fields"). */
export const ErrorField = {
  Severity: 0x53, // 'S' (localized)
  SeverityNonLocalized: 0x56, // 'V'
  Code: 0x43, // 'C'
  Message: 0x4d, // 'M'
  Detail: 0x44, // 'D'
  Hint: 0x48, // 'H'
} as const;
