// Paho C++ (libpaho-mqttpp3, unchanged) mqtt::client scenario: connect with options
// (keepalive 20 s, clean session), subscribe, start_consuming/consume_message, a callback
// object, publish with make_message, unsubscribe, disconnect. Run on Paho C and on mqttsync
// (libpaho-mqtt3as.so.1 -> libmqttsync.so); tests/capi_async.rs compares the output.
// Usage: sync_client BROKER_URI
#include <chrono>
#include <iostream>
#include <mqtt/client.h>

static int failures = 0;
#define CHECK(c) do { if (!(c)) { std::cout << "FAILED line " << __LINE__ << ": " #c << std::endl; ++failures; } } while (0)

class Callback : public virtual mqtt::callback {
public:
    int lost = 0;
    void connection_lost(const std::string&) override { ++lost; }
};

int main(int argc, char** argv)
{
    if (argc < 2) { std::cerr << "usage: sync_client URI\n"; return 2; }
    try {
        mqtt::client cli(argv[1], "cpp-sync-client");
        Callback cb;
        cli.set_callback(cb);
        auto opts = mqtt::connect_options_builder()
                        .keep_alive_interval(std::chrono::seconds(20))
                        .clean_session(true)
                        .finalize();
        auto rsp = cli.connect(opts);
        std::cout << "connected: " << cli.is_connected() << " session present: "
                  << rsp.is_session_present() << std::endl;
        cli.start_consuming();
        auto sub = cli.subscribe("T/cpp/sync/#", 1);
        std::cout << "granted: " << sub.get_reason_codes().at(0) << std::endl;
        for (int qos = 0; qos <= 2; ++qos) {
            auto msg = mqtt::make_message("T/cpp/sync/" + std::to_string(qos),
                                          "hello " + std::to_string(qos), qos, false);
            cli.publish(msg);
            mqtt::const_message_ptr in;
            bool got = cli.try_consume_message_for(&in, std::chrono::seconds(10));
            CHECK(got);
            if (got)
                std::cout << "received " << in->get_topic() << " '" << in->to_string()
                          << "' qos " << in->get_qos() << std::endl;
        }
        cli.unsubscribe("T/cpp/sync/#");
        cli.publish(mqtt::make_message("T/cpp/sync/x", "after unsubscribe", 1, false));
        mqtt::const_message_ptr none;
        bool extra = cli.try_consume_message_for(&none, std::chrono::milliseconds(500));
        std::cout << "after unsubscribe got: " << extra << std::endl;
        CHECK(!extra);
        cli.stop_consuming();
        cli.disconnect();
        std::cout << "connected after disconnect: " << cli.is_connected()
                  << " lost: " << cb.lost << std::endl;
    }
    catch (const mqtt::exception& e) {
        std::cout << "exception: " << e.what() << " rc " << e.get_reason_code() << std::endl;
        ++failures;
    }
    std::cout << "failures: " << failures << std::endl;
    return failures != 0;
}
