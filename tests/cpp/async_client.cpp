// Paho C++ (libpaho-mqttpp3, unchanged) mqtt::async_client scenario: tokens and wait_for,
// a message callback, MQTT 5 create/connect options, automatic reconnect across a broker
// restart with offline buffering (sendWhileDisconnected). Run on Paho C and on mqttsync
// (libpaho-mqtt3as.so.1 -> libmqttsync.so); tests/capi_async.rs drives the restart: the
// program prints "restart now" and the test restarts the broker.
// Usage: async_client BROKER_URI
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <set>
#include <mqtt/async_client.h>

static int failures = 0;
#define CHECK(c) do { if (!(c)) { std::cout << "FAILED line " << __LINE__ << ": " #c << std::endl; ++failures; } } while (0)

static std::mutex mu;
static std::condition_variable cv;
static std::set<std::string> payloads;
static int connects = 0, losses = 0;

template <class F> static bool wait_until(F f, int secs)
{
    std::unique_lock<std::mutex> lk(mu);
    return cv.wait_for(lk, std::chrono::seconds(secs), f);
}

int main(int argc, char** argv)
{
    if (argc < 2) { std::cerr << "usage: async_client URI\n"; return 2; }
    using namespace std::chrono;
    try {
        mqtt::create_options cro(MQTTVERSION_5);
        cro.set_send_while_disconnected(true);
        cro.set_max_buffered_messages(10);
        mqtt::async_client cli(argv[1], "cpp-async-client", cro);
        cli.set_message_callback([](mqtt::const_message_ptr m) {
            std::lock_guard<std::mutex> lk(mu);
            payloads.insert(m->to_string());
            cv.notify_all();
        });
        cli.set_connected_handler([](const std::string&) {
            std::lock_guard<std::mutex> lk(mu);
            ++connects;
            cv.notify_all();
        });
        cli.set_connection_lost_handler([](const std::string&) {
            std::lock_guard<std::mutex> lk(mu);
            ++losses;
            cv.notify_all();
        });
        mqtt::properties props{ {mqtt::property::SESSION_EXPIRY_INTERVAL, 3600} };
        auto opts = mqtt::connect_options_builder()
                        .mqtt_version(MQTTVERSION_5)
                        .clean_start(false)
                        .properties(props)
                        .automatic_reconnect(seconds(1), seconds(2))
                        .finalize();
        auto tok = cli.connect(opts);
        CHECK(tok->wait_for(seconds(10)));
        auto crsp = tok->get_connect_response();
        std::cout << "connected v" << crsp.get_mqtt_version() << std::endl;
        CHECK(wait_until([] { return connects == 1; }, 10));

        auto st = cli.subscribe("T/cpp/async/#", 1);
        CHECK(st->wait_for(seconds(10)));
        std::cout << "subscribe reason: " << st->get_reason_code() << std::endl;

        auto dt = cli.publish("T/cpp/async/a", "one", 3, 1, false);
        CHECK(dt->wait_for(seconds(10)));
        std::cout << "publish token complete: " << dt->is_complete() << std::endl;
        CHECK(wait_until([] { return payloads.count("one") == 1; }, 10));
        std::cout << "received one" << std::endl;

        std::cout << "restart now" << std::endl;
        CHECK(wait_until([] { return losses == 1; }, 30));
        std::cout << "connection lost" << std::endl;
        // Retained, so it reaches the subscription made again after the reconnect whether or
        // not the broker kept the session across its restart.
        auto buffered = cli.publish("T/cpp/async/b", "two", 3, 1, true);
        std::cout << "published while disconnected" << std::endl;
        CHECK(wait_until([] { return connects == 2; }, 30));
        std::cout << "reconnected automatically" << std::endl;
        CHECK(buffered->wait_for(seconds(10)));
        CHECK(cli.subscribe("T/cpp/async/#", 1)->wait_for(seconds(10)));
        CHECK(wait_until([] { return payloads.count("two") == 1; }, 10));
        std::cout << "received two" << std::endl;

        cli.unsubscribe("T/cpp/async/#")->wait_for(seconds(10));
        CHECK(cli.disconnect()->wait_for(seconds(10)));
        std::cout << "disconnected: " << !cli.is_connected() << std::endl;
    }
    catch (const mqtt::exception& e) {
        std::cout << "exception: " << e.what() << " rc " << e.get_reason_code() << std::endl;
        ++failures;
    }
    std::cout << "failures: " << failures << std::endl;
    return failures != 0;
}
