// The benchmark harness as a process of its own: `npm run bench`, and `tunnel bench` / `tunnel demo`,
// which start it rather than import it (the library does not depend on its harness).
import { bench } from './run.js';

process.exit(await bench(process.argv.slice(2)));
