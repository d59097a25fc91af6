// Paho C++ publish/subscribe on mqttsync: connect, subscribe, publish at QoS 0-2 and
// receive each message back through start_consuming()/try_consume_message_for().
// Usage: cpp_pubsub [tcp://host:port]
#include <chrono>
#include <iostream>
#include <mqtt/client.h>

int main(int argc, char** argv)
{
    const std::string uri = argc > 1 ? argv[1] : "tcp://localhost:1883";
    mqtt::client cli(uri, "mqttsync-cpp-example");
    auto opts = mqtt::connect_options_builder()
                    .keep_alive_interval(std::chrono::seconds(20))
                    .clean_session(true)
                    .finalize();
    try {
        cli.connect(opts);
        cli.start_consuming();
        cli.subscribe("demo/cpp/#", 2);
        for (int qos = 0; qos <= 2; ++qos) {
            cli.publish(mqtt::make_message("demo/cpp/" + std::to_string(qos),
                                           "hello at QoS " + std::to_string(qos), qos, false));
            mqtt::const_message_ptr msg;
            if (!cli.try_consume_message_for(&msg, std::chrono::seconds(5))) {
                std::cerr << "no message at QoS " << qos << std::endl;
                return 1;
            }
            std::cout << msg->get_topic() << ": " << msg->to_string() << std::endl;
        }
        cli.unsubscribe("demo/cpp/#");
        cli.disconnect();
    }
    catch (const mqtt::exception& e) {
        std::cerr << "error: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}
