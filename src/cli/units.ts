// Sizes and durations as people write them: "4MiB", "512 KiB", "1048576"; "1s", "500ms", "1000".
// Used alike by flags (--window 4MiB) and the config file (window = "4MiB"). Binary units are powers
// of 1024 (KiB, MiB, GiB), decimal ones powers of 1000 (kB, MB, GB), as their names say; a bare
// "K" or "M" is refused rather than guessed.

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
  kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3,
};

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const NUMBER_AND_UNIT = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/;

/** Bytes from "4MiB", "512 KiB", "64kB" or a plain integer; throws a RangeError naming the form. */
export function parseSize(text: string): number {
  const m = NUMBER_AND_UNIT.exec(text.trim());
  const factor = m ? SIZE_UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || factor === undefined) throw new RangeError(`'${text}' is not a size (write bytes, or e.g. 512KiB, 4MiB, 1GiB)`);
  const bytes = Number(m[1]) * factor;
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`'${text}' is not a whole number of bytes`);
  return bytes;
}

/** Milliseconds from "1s", "500ms", "2m" or a plain integer (ms). */
export function parseDuration(text: string): number {
  const m = NUMBER_AND_UNIT.exec(text.trim());
  const factor = m ? DURATION_UNITS[(m[2] || 'ms').toLowerCase()] : undefined;
  if (!m || factor === undefined) throw new RangeError(`'${text}' is not a duration (write milliseconds, or e.g. 500ms, 1s, 2m)`);
  const ms = Number(m[1]) * factor;
  if (!Number.isSafeInteger(ms)) throw new RangeError(`'${text}' is not a whole number of milliseconds`);
  return ms;
}

/** The shortest exact way to write `bytes` ("4MiB", "1536KiB", "1000"). */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return String(bytes);
}

/** The shortest exact way to write `ms` ("1s", "1500ms"). */
export function formatDuration(ms: number): string {
  for (const [unit, factor] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}
