/*
 * Starts DynamoDB Local bound to 127.0.0.1 only.
 *
 * DynamoDB Local's own main (ServerRunner.main) builds an embedded Jetty
 * `Server(int port)`, whose single ServerConnector has no host and therefore
 * listens on every interface. This launcher builds the same server through
 * ServerRunner.createServerFromCommandLineArgs(args), reaches the private
 * field `server` of DynamoDBProxyServer (org.eclipse.jetty.server.Server, as
 * shown by `javap -p com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer`)
 * by reflection, sets every network connector's host to 127.0.0.1, and only
 * then starts it.
 *
 * Compiled by scripts/install-tools.sh against DynamoDBLocal.jar and its
 * DynamoDBLocal_lib (output in .local/), run by scripts/services.sh as
 *   java -Djava.library.path=<DynamoDBLocal_lib> -cp <classes>:<jar>:<lib>/* \
 *        LoopbackDynamoDbLocal -inMemory -disableTelemetry -port <port>
 * with DDB_LOCAL_TELEMETRY=0 in the environment.
 *
 * On success it prints one line:
 *   dynamodb-local listening on http://127.0.0.1:<port>
 */

import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import java.lang.reflect.Field;
import org.eclipse.jetty.server.AbstractNetworkConnector;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;

public final class LoopbackDynamoDbLocal {
    private static final String HOST = "127.0.0.1";

    private LoopbackDynamoDbLocal() {}

    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        if (proxy == null) {
            System.err.println("dynamodb-local: could not build the server from the arguments");
            System.exit(2);
        }

        Server jetty = jettyServerOf(proxy);
        int bound = 0;
        for (Connector connector : jetty.getConnectors()) {
            if (connector instanceof AbstractNetworkConnector) {
                ((AbstractNetworkConnector) connector).setHost(HOST);
                bound++;
            } else {
                System.err.println("dynamodb-local: refusing to start, unexpected connector " + connector);
                System.exit(3);
            }
        }
        if (bound == 0) {
            System.err.println("dynamodb-local: refusing to start, no network connector found");
            System.exit(3);
        }

        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                proxy.stop();
            } catch (Exception ignored) {
                // the JVM is going away anyway
            }
        }, "dynamodb-local-stop"));

        proxy.start();

        for (Connector connector : jetty.getConnectors()) {
            AbstractNetworkConnector net = (AbstractNetworkConnector) connector;
            String host = net.getHost();
            if (!HOST.equals(host)) {
                System.err.println("dynamodb-local: connector bound to " + host + ", stopping");
                proxy.stop();
                System.exit(4);
            }
            System.out.println("dynamodb-local listening on http://" + host + ":" + net.getLocalPort());
        }
        System.out.flush();
        proxy.join();
    }

    private static Server jettyServerOf(DynamoDBProxyServer proxy) throws ReflectiveOperationException {
        // Prefer the field named `server`; fall back to the first field of type Server
        // in case a later DynamoDB Local renames it.
        try {
            Field field = DynamoDBProxyServer.class.getDeclaredField("server");
            if (Server.class.isAssignableFrom(field.getType())) {
                field.setAccessible(true);
                return (Server) field.get(proxy);
            }
        } catch (NoSuchFieldException ignored) {
            // fall through
        }
        for (Field field : DynamoDBProxyServer.class.getDeclaredFields()) {
            if (Server.class.isAssignableFrom(field.getType())) {
                field.setAccessible(true);
                return (Server) field.get(proxy);
            }
        }
        throw new NoSuchFieldException("no org.eclipse.jetty.server.Server field in DynamoDBProxyServer");
    }
}
