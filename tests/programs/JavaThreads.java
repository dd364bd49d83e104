// A JVM under gshim: Java threads (with the JVM's own stack guard zones),
// synchronized blocks, wait/notify, a thread pool and a concurrent map.
// Run with the single-file source launcher: java JavaThreads.java
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;

public class JavaThreads {
    static final Object lock = new Object();
    static long counter;
    static int turn;

    public static void main(String[] args) throws Exception {
        Thread[] t = new Thread[8];
        for (int i = 0; i < t.length; i++) {
            t[i] = new Thread(() -> {
                for (int j = 0; j < 20000; j++)
                    synchronized (lock) { counter++; }
            });
            t[i].start();
        }
        for (Thread x : t) x.join();
        System.out.println("synchronized counter: " + counter);

        Thread pong = new Thread(() -> {
            for (int i = 0; i < 1000; i++)
                synchronized (lock) {
                    while (turn != 1) try { lock.wait(); } catch (InterruptedException e) { return; }
                    turn = 0; lock.notifyAll();
                }
        });
        pong.start();
        for (int i = 0; i < 1000; i++)
            synchronized (lock) {
                while (turn != 0) lock.wait();
                turn = 1; lock.notifyAll();
            }
        pong.join();
        System.out.println("wait/notify ping-pong: 1000 rounds");

        ExecutorService pool = Executors.newFixedThreadPool(4);
        ConcurrentHashMap<Integer, Integer> map = new ConcurrentHashMap<>();
        AtomicLong sum = new AtomicLong();
        for (int i = 0; i < 1000; i++) {
            final int k = i;
            pool.submit(() -> { map.put(k, k * 2); sum.addAndGet(k); });
        }
        pool.shutdown();
        pool.awaitTermination(60, TimeUnit.SECONDS);
        System.out.println("pool: " + map.size() + " entries, sum " + sum.get());
    }
}
