"""A small TCP proxy on loopback that a test can cut or hang: for network
faults between one master and the router, or a router and PostgreSQL.
Threads, so it works while the test blocks on other processes.

``cut()`` closes every connection (the peer notices at once); ``hang()``
keeps them open and forwards nothing, new ones accepted too, as a network
path that silently drops packets does - except that the proxy's kernel
still acknowledges what is sent, so only a peer's own timeouts, not TCP's,
notice. ``restore()`` ends either: a hung connection then forwards what it
was holding, as a healed path delivers what TCP resends. ``move_to(port)``
cuts every connection and sends new ones to another port: an address (a
virtual IP, pgbouncer) moved to another server."""

import socket
import threading


class CuttableProxy:
    def __init__(self, target_port, host='127.0.0.1'):
        self.target = (host, target_port)
        self._lock = threading.Lock()
        self._conns = []
        self._cut = False
        self._closed = False
        # set while data flows; cleared by hang()
        self._flowing = threading.Event()
        self._flowing.set()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.cuts = 0
        self.hangs = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return f'ws://127.0.0.1:{self.port}/ws'

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refuse = self._cut or self._closed
            if refuse:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                # hung: read nothing more (the sender's buffers fill) and
                # hold what was read; both go on at restore()
                self._flowing.wait()
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Drop every connection and refuse new ones until restore()."""
        with self._lock:
            self._cut = True
            conns, self._conns = self._conns, []
            self.cuts += 1
        for pair in conns:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def hang(self):
        """Keep every connection open and forward nothing, on old and new
        connections alike, until restore()."""
        with self._lock:
            self.hangs += 1
        self._flowing.clear()

    def move_to(self, target_port, host='127.0.0.1'):
        """From now on, new connections go to that port; the old ones are
        cut (their server is no longer behind this address)."""
        self.cut()
        with self._lock:
            self.target = (host, target_port)
        self.restore()

    def restore(self):
        with self._lock:
            self._cut = False
        self._flowing.set()

    def close(self):
        self._closed = True
        self.cut()
        self._flowing.set()     # hung pumps find their sockets closed
        self._listener.close()
