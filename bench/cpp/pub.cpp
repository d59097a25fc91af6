// Paho C++ (paho.mqtt.cpp) publishing QoS 0 or 1: COUNT messages of 64 B through
// mqtt::async_client::publish, at most WINDOW delivery tokens outstanding (the oldest is
// waited for before the next publish), then every token waited for. Prints the rate and
// the process's CPU time per message.
//
// Not part of ./bench/run.sh: run by hand, the same binary on Paho's MQTTAsync and on
// mqttsync's (a directory whose libpaho-mqtt3as.so.1 is libmqttsync.so, as
// tests/capi_async.rs sets up):
//
//   g++ -O2 -o pub bench/cpp/pub.cpp -lpaho-mqttpp3 -lpaho-mqtt3as -lpthread
//   ./pub tcp://127.0.0.1:1883 100000 0 50                          # Paho
//   LD_LIBRARY_PATH=DIR ./pub tcp://127.0.0.1:1883 300000 0 1000    # mqttsync
//
// Paho's client refuses more than 100 outstanding QoS 0 publishes by default
// (MQTTASYNC_MAX_BUFFERED_MESSAGES): use a window below that for it.
#include <mqtt/async_client.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <sys/resource.h>

static double cpu_s()
{
    rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec +
           (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char** argv)
{
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s URI COUNT QOS WINDOW\n", argv[0]);
        return 2;
    }
    long n = std::atol(argv[2]), window = std::atol(argv[4]);
    int qos = std::atoi(argv[3]);
    mqtt::async_client c(argv[1], "pahocpp-bench");
    c.connect()->wait();
    std::string payload(64, 'x');
    std::deque<mqtt::delivery_token_ptr> tokens;
    auto t0 = std::chrono::steady_clock::now();
    double c0 = cpu_s();
    for (long i = 0; i < n; i++) {
        tokens.push_back(c.publish("bench/pahocpp", payload.data(), payload.size(), qos, false));
        if ((long)tokens.size() >= window) {
            tokens.front()->wait();
            tokens.pop_front();
        }
    }
    for (auto& t : tokens)
        t->wait();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("RESULT msgs=%ld rate=%.0f cpu_us_per_msg=%.2f\n", n, n / secs,
                (cpu_s() - c0) * 1e6 / n);
    c.disconnect()->wait();
    return 0;
}
