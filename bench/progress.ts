// The progress indicator, on stderr so stdout keeps only the table: one line per step with the step
// count and the elapsed time; on a terminal the line is rewritten in place.

export interface Progress {
  step(label: string): void;
  /** Something worth keeping on screen (an error, a cap). */
  note(text: string): void;
  done(): void;
}

export function createProgress(total: number, write: (text: string) => void = (t) => process.stderr.write(t), tty = process.stderr.isTTY === true): Progress {
  const started = Date.now();
  let n = 0;
  let open = false;
  const elapsed = () => {
    const s = Math.round((Date.now() - started) / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  };
  return {
    step(label) {
      n++;
      const line = `[${String(n).padStart(String(total).length)}/${total} ${elapsed()}] ${label}`;
      if (tty) { write(`\r\x1b[K${line}`); open = true; } else write(`${line}\n`);
    },
    note(text) {
      if (open) { write('\n'); open = false; }
      write(`  ! ${text}\n`);
    },
    done() {
      if (open) write('\n');
      open = false;
      write(`bench: ${n} steps in ${elapsed()}\n`);
    },
  };
}
