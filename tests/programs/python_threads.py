# CPython's threading under gshim (tests/programs/meson.build: python_threads):
# Lock, Queue, Event, Condition, BoundedSemaphore, Barrier; stdout is
# compared with the native run's.
import queue, sys, threading
sys.setswitchinterval(0.0005)  # many GIL hand-offs: timed condvar waits
N, ITERS = 8, 20000
lock, counter = threading.Lock(), [0]
def inc():
    for _ in range(ITERS):
        with lock:
            counter[0] += 1
ts = [threading.Thread(target=inc) for _ in range(N)]
for t in ts: t.start()
for t in ts: t.join()
print('Lock: %d threads x %d -> %d' % (N, ITERS, counter[0]))
q, P, PER = queue.Queue(maxsize=16), 4, 5000
def prod(i):
    for j in range(PER):
        q.put(i * PER + j + 1)
sums = []
def cons():
    s = 0
    while True:
        v = q.get()
        if v is None:
            break
        s += v
    sums.append(s)
ps = [threading.Thread(target=prod, args=(i,)) for i in range(P)]
cs = [threading.Thread(target=cons) for _ in range(P)]
for t in ps + cs: t.start()
for t in ps: t.join()
for _ in cs: q.put(None)
for t in cs: t.join()
n = P * PER
print('Queue: %d items, sum %d, want %d' % (n, sum(sums), n * (n + 1) // 2))
ev, woke = threading.Event(), []
def waiter():
    if ev.wait(timeout=20):
        woke.append(1)
ws = [threading.Thread(target=waiter) for _ in range(N)]
for t in ws: t.start()
print('Event: wait(0.05) before set ->', ev.wait(0.05))
ev.set()
for t in ws: t.join()
print('Event: %d of %d waiters woke' % (len(woke), N))
cond, items, got = threading.Condition(), [], []
def ccons():
    with cond:
        while True:
            cond.wait_for(lambda: items)
            v = items.pop(0)
            if v < 0:
                return
            got.append(v)
cts = [threading.Thread(target=ccons) for _ in range(4)]
for t in cts: t.start()
for i in range(1, 1001):
    with cond:
        items.append(i)
        cond.notify()
for _ in cts:
    with cond:
        items.append(-1)
        cond.notify()
for t in cts: t.join()
print('Condition: %d items, sum %d' % (len(got), sum(got)))
with cond:
    print('Condition: wait(0.05) timed out ->', not cond.wait(0.05))
sem, inside, maxin = threading.BoundedSemaphore(3), [0], [0]
def semuser():
    for _ in range(200):
        with sem:
            with lock:
                inside[0] += 1
                maxin[0] = max(maxin[0], inside[0])
            with lock:
                inside[0] -= 1
sts = [threading.Thread(target=semuser) for _ in range(N)]
for t in sts: t.start()
for t in sts: t.join()
print('BoundedSemaphore(3): max inside <= 3 ->', maxin[0] <= 3)
bar, passed = threading.Barrier(N), []
def barrier_user():
    for _ in range(50):
        bar.wait()
    passed.append(1)
bts = [threading.Thread(target=barrier_user) for _ in range(N)]
for t in bts: t.start()
for t in bts: t.join()
print('Barrier: %d threads x 50 rounds passed' % len(passed))
ok = (counter[0] == N * ITERS and sum(sums) == n * (n + 1) // 2 and len(woke) == N
      and sum(got) == 500500 and maxin[0] <= 3 and len(passed) == N)
print('ok' if ok else 'FAILED')
sys.exit(0 if ok else 1)
