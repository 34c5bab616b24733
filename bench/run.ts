// The benchmark suite entry (tunnel bench). Filled in by the benchmark harness.
export async function bench(_args: string[]): Promise<number> {
  process.stderr.write('tunnel bench: not built yet\n');
  return 1;
}
