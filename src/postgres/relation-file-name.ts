// Relation file names in a database directory, as the server's storage/reinit.c
// and catalog.c read them: "<relfilenode>[_<fork>][.<segment>]" for permanent
// and unlogged relations, "t<backend>_<relfilenode>[_<fork>][.<segment>]" for
// temporary ones. The fork names after "_" are fsm, vm and init ("main" is the
// fork without a suffix).

export type ForkName = 'main' | 'fsm' | 'vm' | 'init';

export interface RelationFileName {
  /** The relfilenode digits as written in the name. */
  relNumber: string;
  fork: ForkName;
  /** 0 without a ".N" suffix. */
  segment: number;
}

const OIDCHARS = 10;
const UINT32_MAX = 0xffffffff;

// 13-16 (parse_filename_for_nontemp_relation in reinit.c): 1 to 10 digits,
// leading zeros allowed, any non-empty digit string as the segment.
const OLD_FORM = /^([0-9]{1,10})(?:_(fsm|vm|init))?(?:\.([0-9]+))?$/;
// 17+ (rewritten for incremental backup): no leading zero in either number,
// both within uint32; a name such as 0017 or 17.03 is not a relation file.
const NEW_FORM = /^([1-9][0-9]*)(?:_(fsm|vm|init))?(?:\.([1-9][0-9]*))?$/;

/**
 * A permanent or unlogged relation file name, parsed as the server of this
 * version parses it (parse_filename_for_nontemp_relation), or null.
 */
export function parseRelationFileName(name: string, serverVersionNum: number): RelationFileName | null {
  if (serverVersionNum >= 170000) {
    const m = NEW_FORM.exec(name);
    if (!m) return null;
    const rel = Number(m[1]);
    const seg = m[3] === undefined ? 0 : Number(m[3]);
    if (m[1]!.length > OIDCHARS || rel > UINT32_MAX || seg > UINT32_MAX) return null;
    return { relNumber: m[1]!, fork: (m[2] as ForkName | undefined) ?? 'main', segment: seg };
  }
  const m = OLD_FORM.exec(name);
  if (!m) return null;
  // A segment beyond any real relation size is still "a relation file" here;
  // only its checksum block number would be out of range.
  return { relNumber: m[1]!, fork: (m[2] as ForkName | undefined) ?? 'main', segment: m[3] === undefined ? 0 : Number(m[3]) };
}

const TEMP_FORM = /^t[0-9]+_[0-9]+(?:_(?:fsm|vm|init))?(?:\.[0-9]+)?$/;

/** looks_like_temp_rel_name: a temporary relation's file (the same rule in 13-18). */
export function isTemporaryRelationFileName(name: string): boolean {
  return TEMP_FORM.test(name);
}
