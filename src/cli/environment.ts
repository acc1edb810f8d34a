import fs from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';

/**
 * Loads `.env` from the working directory into the environment (real variables win), and returns it.
 * Only the CLI touches process.env; everything below receives the result.
 */
export function loadEnvironment(): NodeJS.ProcessEnv {
  const file = path.resolve('.env');
  if (fs.existsSync(file)) dotenv.config({ path: file, override: false, quiet: true });
  // The SDK warns about Node 20 on every run; the lock file pins an SDK that supports it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return process.env;
}
