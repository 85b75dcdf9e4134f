/**
 * The non-empty lines of a byte stream, for the JSON-lines protocol between the test
 * harnesses and their child processes.
 *
 * @module
 */

/** Yields each non-empty, trimmed line of `stream` as it arrives. */
export async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line.length > 0) yield line;
    }
  }
}
