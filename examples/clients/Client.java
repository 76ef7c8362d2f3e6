// The calling rule, in Java, with nothing but the JDK:
//
//   call the endpoint you have; if the connection fails or the endpoint answers
//   "not found", read /registry/<service> again and retry once; if that fails,
//   it has failed.
//
//   java Client.java [--mount DIR] [--seconds N] [--interval S] SERVICE PATH
// Prints one line per failed call and a JSON summary at the end (the same
// summary as client.py and client.sh).

import java.io.IOException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

public class Client {
    private final Path file;
    private final String path;
    private String endpoint;
    private int calls, ok, rereads, failed;
    private final List<String> endpoints = new ArrayList<>();

    Client(String mount, String service, String path) {
        this.file = Path.of(mount, service);
        this.path = path;
    }

    /** A health-checked host:port; throws when the service has none. */
    private String lookup() throws IOException {
        String e = Files.readString(file).trim();
        if (!endpoints.contains(e)) endpoints.add(e);
        return e;
    }

    /** One request; a refused connection or a 404 ("not found") throws. */
    private void call(String e) throws IOException {
        HttpURLConnection c = (HttpURLConnection) URI.create("http://" + e + path).toURL().openConnection();
        c.setConnectTimeout(2000);
        c.setReadTimeout(2000);
        try {
            int code = c.getResponseCode();
            if (code >= 400) throw new IOException(e + path + " answered " + code);
            c.getInputStream().readAllBytes();
        } finally {
            c.disconnect();
        }
    }

    void once() {
        calls++;
        for (int attempt = 1; attempt <= 2; attempt++) {
            try {
                if (endpoint == null || attempt == 2) {
                    if (attempt == 2) rereads++;
                    endpoint = lookup();
                }
                call(endpoint);
                ok++;
                return;
            } catch (IOException e) {
                if (attempt == 2) {
                    failed++;
                    System.out.println("call failed twice: " + e.getMessage());
                }
            }
        }
    }

    String summary() {
        StringBuilder list = new StringBuilder();
        for (String e : endpoints) list.append(list.length() == 0 ? "" : ", ").append('"').append(e).append('"');
        return String.format("{\"calls\": %d, \"ok\": %d, \"rereads\": %d, \"failed\": %d, \"endpoints\": [%s]}",
                calls, ok, rereads, failed, list);
    }

    public static void main(String[] args) throws InterruptedException {
        String mount = "/registry";
        double seconds = 10, interval = 0.05;
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--mount" -> mount = args[++i];
                case "--seconds" -> seconds = Double.parseDouble(args[++i]);
                case "--interval" -> interval = Double.parseDouble(args[++i]);
                default -> rest.add(args[i]);
            }
        }
        if (rest.size() != 2) {
            System.err.println("usage: java Client.java [--mount DIR] [--seconds N] [--interval S] SERVICE PATH");
            System.exit(2);
        }
        Client client = new Client(mount, rest.get(0), rest.get(1));
        long deadline = System.nanoTime() + (long) (seconds * 1e9);
        while (System.nanoTime() < deadline) {
            client.once();
            Thread.sleep((long) (interval * 1000));
        }
        System.out.println(client.summary());
    }
}
