// A C++11 program on the C API: RAII owners for the client and for received messages,
// publishes one message at each QoS to itself and receives them back.
// Usage: cpp_client [URI] [TOPIC]
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "MQTTClient.h"

namespace {

struct Client {
    MQTTClient handle = nullptr;
    Client(const std::string &uri, const std::string &id) {
        int rc = MQTTClient_create(&handle, uri.c_str(), id.c_str(), MQTTCLIENT_PERSISTENCE_NONE, nullptr);
        if (rc != MQTTCLIENT_SUCCESS)
            throw std::runtime_error(std::string("create: ") + MQTTClient_strerror(rc));
    }
    ~Client() {
        if (MQTTClient_isConnected(handle))
            MQTTClient_disconnect(handle, 1000);
        MQTTClient_destroy(&handle);
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    void check(int rc, const char *what) {
        if (rc != MQTTCLIENT_SUCCESS)
            throw std::runtime_error(std::string(what) + " failed: " + std::to_string(rc));
    }
};

struct MessageDeleter {
    void operator()(MQTTClient_message *m) const { MQTTClient_freeMessage(&m); }
};
struct TopicDeleter {
    void operator()(char *t) const { MQTTClient_free(t); }
};

} // namespace

int main(int argc, char *argv[]) {
    std::string uri = argc > 1 ? argv[1] : "tcp://localhost:1883";
    std::string topic = argc > 2 ? argv[2] : "mqttsync/cpp";
    try {
        Client c(uri, "mqttsync-cpp-client");
        MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
        opts.keepAliveInterval = 20;
        c.check(MQTTClient_connect(c.handle, &opts), "connect");
        c.check(MQTTClient_subscribe(c.handle, topic.c_str(), 2), "subscribe");
        for (int qos = 0; qos <= 2; ++qos) {
            std::string payload = "hello from C++ at QoS " + std::to_string(qos);
            MQTTClient_deliveryToken token = 0;
            c.check(MQTTClient_publish(c.handle, topic.c_str(), static_cast<int>(payload.size()),
                                       payload.data(), qos, 0, &token), "publish");
            c.check(MQTTClient_waitForCompletion(c.handle, token, 5000), "waitForCompletion");
            char *raw_topic = nullptr;
            int topic_len = 0;
            MQTTClient_message *raw_msg = nullptr;
            c.check(MQTTClient_receive(c.handle, &raw_topic, &topic_len, &raw_msg, 5000), "receive");
            std::unique_ptr<char, TopicDeleter> t(raw_topic);
            std::unique_ptr<MQTTClient_message, MessageDeleter> m(raw_msg);
            if (!m)
                throw std::runtime_error("no message within 5 s");
            std::string got(static_cast<const char *>(m->payload), static_cast<size_t>(m->payloadlen));
            if (got != payload)
                throw std::runtime_error("unexpected payload: " + got);
            std::printf("%s: %s\n", t.get(), got.c_str());
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "cpp_client: %s\n", e.what());
        return 1;
    }
    return 0;
}
