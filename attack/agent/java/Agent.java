// idlerace's java agent: the JDK's java.net.http.HttpClient with its defaults
// (HttpClient.newHttpClient()), one client (and so one connection pool) per lane, driven
// over stdin/stdout as docs/agent-protocol.md says. Run from source by the JDK's
// single-file launcher; JSON through Debian's Jackson.
//
// Why it races like idlerace's "watch", with a replay of GET and HEAD (JDK 17,
// jdk.internal.net.http):
//   - ConnectionPool.CleanupTrigger subscribes to a pooled connection's reads: "Anything
//     that comes in will cause the connection to be closed and removed from the pool",
//     the server's FIN included (onComplete), once the client's selector thread gets to
//     it; a request handed out before then goes on the closed connection.
//   - ConnectionPool.KEEP_ALIVE: jdk.httpclient.keepalive.timeout, 1200 s (the expiry
//     truncated to whole seconds): a connection idle longer is purged.
//   - MultiExchange.getExceptionalCF retries a request once on ConnectionExpiredException
//     (the connection closed under a reused exchange) when canRetryRequest: GET or HEAD
//     only (isIdempotentRequest), unless jdk.httpclient.enableAllMethodRetry is set.
//
// What HttpClient does not say (which connection a request went on), the agent reads
// from inside it: the lane's pooled connection before a send and after it (the response
// read, its connection is back in the pool), by reflection (--add-opens java.net.http/jdk.internal.net.http).
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.EOFException;
import java.io.InputStreamReader;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.locks.LockSupport;

public class Agent {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Object OUT = new Object();
    // Headers HttpClient refuses to be given (it sets them itself; IllegalArgumentException
    // unless jdk.httpclient.allowRestrictedHeaders names them).
    static final Set<String> RESTRICTED = Set.of("connection", "content-length", "expect", "host", "upgrade");

    static void out(ObjectNode o) {
        synchronized (OUT) {
            System.out.println(o.toString());
            System.out.flush();
        }
    }

    // System.nanoTime is CLOCK_MONOTONIC on Linux (os::javaTimeNanos), the protocol's clock.
    static void waitUntil(long at) {
        while (true) {
            long d = at - System.nanoTime();
            if (d <= 0) return;
            if (d > 2_000_000) LockSupport.parkNanos(d - 1_500_000);
            else Thread.onSpinWait();
        }
    }

    static String classify(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof HttpTimeoutException) return "timeout";
            String m = String.valueOf(t.getMessage());
            if (t instanceof EOFException || m.contains("received no bytes")) return "eof";
            if (m.contains("Broken pipe")) return "reset_write";
            if (m.contains("Connection reset")) return "reset_read";
            if (t.getCause() == t) break;
        }
        return "other";
    }

    static final class Lane extends Thread {
        // HttpClient.newHttpClient() is newBuilder().build(): the same defaults, with the
        // kind's version option when given.
        final HttpClient client = VERSION == null ? HttpClient.newHttpClient()
                : HttpClient.newBuilder().version(VERSION).build();
        final LinkedBlockingQueue<JsonNode> q = new LinkedBlockingQueue<>();
        static final JsonNode STOP = JSON.createObjectNode();

        Lane() { setDaemon(true); }

        public void run() {
            try {
                while (true) {
                    JsonNode m = q.take();
                    if (m == STOP) return;
                    waitUntil(Long.parseLong(m.path("at_ns").asText("0")));
                    out(send(m));
                }
            } catch (InterruptedException e) {
                // closing
            }
        }

        ObjectNode send(JsonNode m) {
            ObjectNode res = JSON.createObjectNode();
            res.put("op", "result");
            res.set("id", m.get("id"));
            res.set("lane", m.get("lane"));
            res.put("status", 0);
            res.put("bytes_in", 0);
            String method = m.path("method").asText("POST");
            String body = m.path("body").asText("");
            HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(m.get("url").asText()));
            b.method(method, body.isEmpty() && method.equals("GET") ? HttpRequest.BodyPublishers.noBody()
                    : HttpRequest.BodyPublishers.ofString(body));
            for (Iterator<Map.Entry<String, JsonNode>> it = m.path("headers").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> h = it.next();
                if (!RESTRICTED.contains(h.getKey().toLowerCase())) b.header(h.getKey(), h.getValue().asText());
            }
            long timeout = Long.parseLong(m.path("timeout_ns").asText("0"));
            if (timeout > 0) b.timeout(Duration.ofNanos(timeout));
            int pooled = pooledPort(client);
            res.put("start_ns", Long.toString(System.nanoTime()));
            try {
                HttpResponse<byte[]> r = client.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
                res.put("end_ns", Long.toString(System.nanoTime()));
                res.put("status", r.statusCode());
                res.put("bytes_in", r.body().length);
                // Back in the pool once its body is read (the lane's one connection), or,
                // if the pool has not taken it back yet, the one open channel of the
                // client's selector.
                int port = pooledPort(client);
                if (port == 0) port = selectorPort(client);
                if (port > 0) {
                    res.put("local_port", port);
                    res.put("reused", port == pooled);
                }
            } catch (Exception e) {
                res.put("end_ns", Long.toString(System.nanoTime()));
                StringBuilder msg = new StringBuilder();
                for (Throwable t = e; t != null && msg.length() < 300; t = t.getCause() == t ? null : t.getCause()) {
                    if (msg.length() > 0) msg.append(": ");
                    msg.append(t.getClass().getSimpleName());
                    if (t.getMessage() != null) msg.append(" ").append(t.getMessage());
                }
                res.put("error", msg.toString());
                res.put("class", classify(e));
                if (pooled > 0) { // the lane's one pooled connection, unless it was purged first
                    res.put("local_port", pooled);
                    res.put("reused", true);
                }
            }
            return res;
        }
    }

    // The local port of the lane's idle pooled connection (0: none).
    @SuppressWarnings("unchecked")
    static int pooledPort(HttpClient c) {
        try {
            Object impl = field(c, "impl");
            Object pool = field(impl, "connections");
            synchronized (pool) {
                for (Object list : ((HashMap<Object, Object>) field(pool, "plainPool")).values()) {
                    for (Object conn : (Collection<Object>) list) {
                        int p = portOf(conn);
                        if (p > 0) return p;
                    }
                }
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            // unknown: the result says nothing of reuse
        }
        return 0;
    }

    // The local port of an open socket registered with the client's selector (0: none).
    static int selectorPort(HttpClient c) {
        try {
            java.nio.channels.Selector sel = (java.nio.channels.Selector) field(field(field(c, "impl"), "selmgr"), "selector");
            for (java.nio.channels.SelectionKey k : sel.keys().toArray(new java.nio.channels.SelectionKey[0])) {
                if (k.channel() instanceof SocketChannel sc && sc.isOpen()) {
                    return ((InetSocketAddress) sc.getLocalAddress()).getPort();
                }
            }
        } catch (ReflectiveOperationException | RuntimeException | java.io.IOException e) {
            // unknown
        }
        return 0;
    }

    static int portOf(Object conn) throws ReflectiveOperationException {
        if (conn == null) return 0;
        Method ch = findMethod(conn.getClass(), "channel");
        ch.setAccessible(true);
        SocketChannel sc = (SocketChannel) ch.invoke(conn);
        try {
            return ((InetSocketAddress) sc.getLocalAddress()).getPort();
        } catch (java.io.IOException | NullPointerException e) {
            return 0;
        }
    }

    static Object field(Object o, String name) throws ReflectiveOperationException {
        for (Class<?> k = o.getClass(); k != null; k = k.getSuperclass()) {
            try {
                Field f = k.getDeclaredField(name);
                f.setAccessible(true);
                return f.get(o);
            } catch (NoSuchFieldException e) {
                // its superclass, then
            }
        }
        throw new NoSuchFieldException(name);
    }

    static Method findMethod(Class<?> k, String name) throws NoSuchMethodException {
        for (; k != null; k = k.getSuperclass()) {
            try {
                return k.getDeclaredMethod(name);
            } catch (NoSuchMethodException e) {
                // its superclass, then
            }
        }
        throw new NoSuchMethodException(name);
    }

    static HttpClient.Version VERSION;

    public static void main(String[] args) throws Exception {
        // The kind's keepalive_timeout option (--max-idle-ns N): the pool reads
        // jdk.httpclient.keepalive.timeout (whole seconds) once, when the first client is made.
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals("--version")) {
                VERSION = HttpClient.Version.valueOf(args[i + 1]);
            }
            if (args[i].equals("--max-idle-ns")) {
                System.setProperty("jdk.httpclient.keepalive.timeout", Long.toString(Long.parseLong(args[i + 1]) / 1_000_000_000L));
            }
        }
        Map<Integer, Lane> lanes = new HashMap<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String version = System.getProperty("java.runtime.version");
        for (String line; (line = in.readLine()) != null; ) {
            JsonNode m;
            try {
                m = JSON.readTree(line);
            } catch (Exception e) {
                System.err.println("java-agent: bad line: " + e.getMessage());
                continue;
            }
            String op = m.path("op").asText();
            if (op.equals("hello")) {
                ObjectNode h = JSON.createObjectNode();
                h.put("op", "hello");
                h.put("protocol", 1);
                h.put("kind", "java");
                h.put("library", "java.net.http.HttpClient (" + System.getProperty("java.vm.name") + " " + version + ")");
                h.put("version", version);
                out(h);
            } else if (op.equals("send")) {
                int n = m.get("lane").asInt();
                Lane l = lanes.get(n);
                if (l == null) {
                    l = new Lane();
                    lanes.put(n, l);
                    l.start();
                }
                l.q.put(m);
            } else if (op.equals("close")) {
                break;
            } else {
                System.err.println("java-agent: unknown op " + op);
            }
        }
        for (Lane l : lanes.values()) l.q.put(Lane.STOP);
        for (Lane l : lanes.values()) l.join(5000);
        System.exit(0);
    }
}
