// Parsing of server settings as SHOW prints them ("16MB", "1GB", "8kB").

export function parseSizeSetting(text: string): number {
  const m = /^(\d+)\s*(B|kB|MB|GB|TB)?$/.exec(text.trim());
  if (!m) throw new Error(`cannot parse size setting "${text}"`);
  const unit = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 }[(m[2] ?? 'B') as 'B'];
  return Number(m[1]) * unit;
}
