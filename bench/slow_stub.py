"""A central-service stand-in for bench/shield.sh that answers /protected after a delay (as a
service across a network does) and counts what it received: GET /count. Loopback only."""
import asyncio
import sys

ANSWER = b'{"email":"user@example.com","message":"Access granted"}'
count = 0


async def serve(reader, writer, delay):
    global count
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"GET /count "):
                body = str(count).encode()
            else:
                count += 1
                await asyncio.sleep(delay)
                body = ANSWER
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port, delay):
    server = await asyncio.start_server(lambda r, w: serve(r, w, delay), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) / 1000))
