# CPython's threading.local() across migrations (meson.build: python_local):
# threads take turns on a Condition, in a ring, and check their
# thread-local values, identity and name after every wake-up.
import sys, threading
sys.setswitchinterval(0.0005)
N, ROUNDS = 8, 150
inits = []
class Local(threading.local):
    def __init__(self):
        inits.append(threading.get_ident())
        self.count = 0
local = Local()
plain = threading.local()
cond, turn, bad = threading.Condition(), [0], [0] * N
def worker(i):
    plain.v = i * 1000
    plain.name = 'w%d' % i
    ident = threading.get_ident()
    for r in range(ROUNDS):
        with cond:
            while turn[0] % N != i:
                cond.wait()
            turn[0] += 1
            cond.notify_all()
        local.count += 1
        plain.v += 1
        if (local.count != r + 1 or plain.v != i * 1000 + r + 1 or plain.name != 'w%d' % i
                or threading.get_ident() != ident or threading.current_thread().name != 'w%d' % i):
            bad[i] += 1
ts = [threading.Thread(target=worker, args=(i,), name='w%d' % i) for i in range(N)]
for t in ts: t.start()
for t in ts: t.join()
for i in range(N):
    print('thread %d: threading.local %s' % (i, 'ok' if bad[i] == 0 else 'CORRUPTED'))
main_ok = not hasattr(plain, 'v') and local.count == 0
print('main: threading.local', 'ok' if main_ok else 'CORRUPTED')
print('Local.__init__ ran once per thread:', len(inits) == N + 1 and len(set(inits)) == N + 1)
ok = main_ok and not any(bad) and len(inits) == N + 1 and turn[0] == N * ROUNDS
print('ok' if ok else 'FAILED')
sys.exit(0 if ok else 1)
