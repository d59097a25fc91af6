/*
 * Exercises the C functions that need no client. The first part prints deterministic
 * results and is built both against Eclipse Paho C (-lpaho-mqtt3c) and against mqttsync;
 * tests/capi_c.rs requires identical output. The second part (mqttsync only) checks the
 * extensions: NULL safety, value validation, thread-safe strerror, trace, free functions.
 * Also run under AddressSanitizer/LeakSanitizer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "MQTTClient.h"

#define CHECK(cond) do { if (!(cond)) { printf("CHECK FAILED line %d: %s\n", __LINE__, #cond); \
    failures++; } } while (0)

static int failures = 0;

#if defined(MQTTSYNC_H)
#define PROPS_LEN(p) MQTTProperties_len(p)
#else
/* libpaho-mqtt3c does not export MQTTProperties_len (declared without LIBMQTT_API); this is
 * the formula of Paho's MQTTProperties.c, against which mqttsync's export is compared. */
static int PROPS_LEN(MQTTProperties* p)
{
    int n;
    if (p == NULL)
        return 1;
    n = p->length;
    return n + (n < 128 ? 1 : n < 16384 ? 2 : n < 2097152 ? 3 : 4);
}
#endif

static const char* str_or_null(const char* s) { return s ? s : "(null)"; }

static MQTTProperty int_prop(enum MQTTPropertyCodes id, unsigned int v)
{
    MQTTProperty p;
    memset(&p, 0, sizeof p);
    p.identifier = id;
    switch (MQTTProperty_getType(id))
    {
    case MQTTPROPERTY_TYPE_BYTE: p.value.byte = (unsigned char)v; break;
    case MQTTPROPERTY_TYPE_TWO_BYTE_INTEGER: p.value.integer2 = (unsigned short)v; break;
    default: p.value.integer4 = v; break;
    }
    return p;
}

static MQTTProperty str_prop(enum MQTTPropertyCodes id, const char* data, const char* value)
{
    MQTTProperty p;
    memset(&p, 0, sizeof p);
    p.identifier = id;
    p.value.data.len = (int)strlen(data);
    p.value.data.data = (char*)data;
    if (value)
    {
        p.value.value.len = (int)strlen(value);
        p.value.value.data = (char*)value;
    }
    return p;
}

static void print_props(const char* what, MQTTProperties* props)
{
    int i;
    printf("%s: count %d length %d len %d\n", what, props->count, props->length,
           PROPS_LEN(props));
    for (i = 0; i < props->count; ++i)
    {
        MQTTProperty* p = &props->array[i];
        int type = MQTTProperty_getType(p->identifier);
        printf("  [%d] %s type %d", i, str_or_null(MQTTPropertyName(p->identifier)), type);
        if (type == MQTTPROPERTY_TYPE_BYTE) printf(" = %u", p->value.byte);
        else if (type == MQTTPROPERTY_TYPE_TWO_BYTE_INTEGER) printf(" = %u", p->value.integer2);
        else if (type <= MQTTPROPERTY_TYPE_VARIABLE_BYTE_INTEGER) printf(" = %u", p->value.integer4);
        else
        {
            printf(" = '%.*s'", p->value.data.len, p->value.data.data);
            if (type == MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR)
                printf(" : '%.*s'", p->value.value.len, p->value.value.data);
        }
        printf("\n");
    }
}

static void common_part(void)
{
    int i;
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperties copy;
    MQTTProperty p;
    char buf[8];

    for (i = -20; i <= 2; ++i)
        printf("strerror %d: %s\n", i, str_or_null(MQTTClient_strerror(i)));
    printf("strerror 128: %s\n", str_or_null(MQTTClient_strerror(128)));
    for (i = -1; i <= 256; ++i)
        if (MQTTReasonCode_toString((enum MQTTReasonCodes)i))
            printf("reason %d: %s\n", i, MQTTReasonCode_toString((enum MQTTReasonCodes)i));
    for (i = -1; i <= 50; ++i)
        printf("property %d: %s type %d\n", i, str_or_null(MQTTPropertyName((enum MQTTPropertyCodes)i)),
               MQTTProperty_getType((enum MQTTPropertyCodes)i));

    printf("len(NULL) = %d\n", PROPS_LEN(NULL));
    p = int_prop(MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR, 1);
    printf("add byte: %d\n", MQTTProperties_add(&props, &p));
    p = int_prop(MQTTPROPERTY_CODE_TOPIC_ALIAS, 300);
    printf("add two-byte: %d\n", MQTTProperties_add(&props, &p));
    p = int_prop(MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL, 70000);
    printf("add four-byte: %d\n", MQTTProperties_add(&props, &p));
    p = int_prop(MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, 128);
    printf("add vbi 128: %d\n", MQTTProperties_add(&props, &p));
    p = int_prop(MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, 16384);
    printf("add vbi 16384: %d\n", MQTTProperties_add(&props, &p));
    p = int_prop(MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, 2097152);
    printf("add vbi 2097152: %d\n", MQTTProperties_add(&props, &p));
    p = str_prop(MQTTPROPERTY_CODE_CONTENT_TYPE, "text/plain", NULL);
    printf("add string: %d\n", MQTTProperties_add(&props, &p));
    strcpy(buf, "abc");
    p = str_prop(MQTTPROPERTY_CODE_CORRELATION_DATA, buf, NULL);
    printf("add binary: %d\n", MQTTProperties_add(&props, &p));
    buf[0] = 'X'; /* the list holds a copy */
    p = str_prop(MQTTPROPERTY_CODE_USER_PROPERTY, "name", "value");
    printf("add user: %d\n", MQTTProperties_add(&props, &p));
    p = str_prop(MQTTPROPERTY_CODE_USER_PROPERTY, "name", "second");
    printf("add user 2: %d\n", MQTTProperties_add(&props, &p));
    p = int_prop((enum MQTTPropertyCodes)0x7f, 1);
    printf("add unknown id: %d\n", MQTTProperties_add(&props, &p));
    print_props("props", &props);
    printf("max_count %d\n", props.max_count);

    printf("has user %d, has reason %d\n",
           MQTTProperties_hasProperty(&props, MQTTPROPERTY_CODE_USER_PROPERTY),
           MQTTProperties_hasProperty(&props, MQTTPROPERTY_CODE_REASON_STRING));
    printf("count subid %d, user %d, reason %d\n",
           MQTTProperties_propertyCount(&props, MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER),
           MQTTProperties_propertyCount(&props, MQTTPROPERTY_CODE_USER_PROPERTY),
           MQTTProperties_propertyCount(&props, MQTTPROPERTY_CODE_REASON_STRING));
    for (i = -1; i <= 4; ++i)
        printf("subid at %d = %d\n", i,
               MQTTProperties_getNumericValueAt(&props, MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, i));
    printf("numeric alias %d, expiry %d, pfi %d, content-type %d, missing %d\n",
           MQTTProperties_getNumericValue(&props, MQTTPROPERTY_CODE_TOPIC_ALIAS),
           MQTTProperties_getNumericValue(&props, MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL),
           MQTTProperties_getNumericValue(&props, MQTTPROPERTY_CODE_PAYLOAD_FORMAT_INDICATOR),
           MQTTProperties_getNumericValue(&props, MQTTPROPERTY_CODE_CONTENT_TYPE),
           MQTTProperties_getNumericValue(&props, MQTTPROPERTY_CODE_REASON_STRING));
    for (i = -1; i <= 2; ++i)
    {
        MQTTProperty* q = MQTTProperties_getPropertyAt(&props, MQTTPROPERTY_CODE_USER_PROPERTY, i);
        printf("user at %d: %s\n", i, q ? "found" : "none");
        if (q)
            printf("  index %d value '%.*s'\n", (int)(q - props.array), q->value.value.len,
                   q->value.value.data);
    }
    printf("getProperty content type index %d\n",
           (int)(MQTTProperties_getProperty(&props, MQTTPROPERTY_CODE_CONTENT_TYPE) - props.array));
    printf("getProperty missing %s\n",
           MQTTProperties_getProperty(&props, MQTTPROPERTY_CODE_REASON_STRING) ? "found" : "none");

    /* At most 10 entries here: Debian's Paho 1.3.11 fails the 11th MQTTProperties_add
     * (-99) and leaves count 10 with a NULL array. mqttsync grows the array instead. */
    copy = MQTTProperties_copy(&props);
    print_props("copy", &copy);
    printf("copy shares data: %d\n", copy.array[7].value.data.data == props.array[7].value.data.data);
    MQTTProperties_free(&copy);
    printf("after free: %d %d %d %s\n", copy.count, copy.max_count, copy.length,
           copy.array ? "array" : "NULL");

    MQTTProperties_free(&props);
    MQTTProperties_free(&props); /* freeing an empty list again is harmless */
    printf("after free: %d %d %d %s\n", props.count, props.max_count, props.length,
           props.array ? "array" : "NULL");
}

#if defined(MQTTSYNC_H)
static int traced = 0;
static void tracer(enum MQTTCLIENT_TRACE_LEVELS level, char* message)
{
    if (level >= MQTTCLIENT_TRACE_ERROR && strstr(message, "MQTTClient_global_init"))
        traced++;
}

static void mqttsync_part(void)
{
    MQTTProperties props = MQTTProperties_initializer;
    MQTTProperty p;
    MQTTClient_nameValue* v;
    MQTTClient_init_options init = MQTTClient_init_options_initializer;
    MQTTClient_message* m;
    MQTTResponse r = MQTTResponse_initializer;
    const char* s;
    int i;

    /* Growth past 10 entries (Paho 1.3.11 fails here). */
    for (i = 0; i < 25; ++i)
    {
        p = int_prop(MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, (unsigned)i);
        CHECK(MQTTProperties_add(&props, &p) == 0);
    }
    CHECK(props.count == 25 && props.max_count == 30 && props.length == 50);
    CHECK(MQTTProperties_getNumericValueAt(&props, MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, 24) == 24);
    MQTTProperties_free(&props);

    /* NULL safety where Paho would crash. */
    CHECK(MQTTProperties_add(NULL, NULL) == MQTTCLIENT_FAILURE);
    CHECK(MQTTProperties_add(&props, NULL) == MQTTCLIENT_FAILURE);
    CHECK(MQTTProperties_hasProperty(NULL, MQTTPROPERTY_CODE_USER_PROPERTY) == 0);
    CHECK(MQTTProperties_propertyCount(NULL, MQTTPROPERTY_CODE_USER_PROPERTY) == 0);
    CHECK(MQTTProperties_getNumericValue(NULL, MQTTPROPERTY_CODE_TOPIC_ALIAS) == -9999999);
    CHECK(MQTTProperties_getProperty(NULL, MQTTPROPERTY_CODE_TOPIC_ALIAS) == NULL);
    props = MQTTProperties_copy(NULL);
    CHECK(props.count == 0 && props.array == NULL);
    MQTTProperties_free(NULL);

    /* Invalid values are refused and leave the list unchanged. */
    p = str_prop(MQTTPROPERTY_CODE_CONTENT_TYPE, "x", NULL);
    p.value.data.len = -1;
    CHECK(MQTTProperties_add(&props, &p) == MQTTCLIENT_FAILURE);
    p.value.data.len = 5;
    p.value.data.data = NULL;
    CHECK(MQTTProperties_add(&props, &p) == MQTTCLIENT_FAILURE);
    p.value.data.len = 70000;
    p.value.data.data = (char*)"x";
    CHECK(MQTTProperties_add(&props, &p) == MQTTCLIENT_FAILURE);
    p = int_prop(MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER, 268435456u);
    CHECK(MQTTProperties_add(&props, &p) == MQTTCLIENT_FAILURE);
    CHECK(props.count == 0 && props.length == 0);
    /* An empty string is fine and its copy is NUL-terminated. */
    p = str_prop(MQTTPROPERTY_CODE_REASON_STRING, "", NULL);
    CHECK(MQTTProperties_add(&props, &p) == 0);
    CHECK(props.array[0].value.data.data != NULL && props.array[0].value.data.data[0] == '\0');
    MQTTProperties_free(&props);

    /* strerror of an unknown code. */
    s = MQTTClient_strerror(-42);
    CHECK(strcmp(s, "Unknown error code -42") == 0);

    /* Version info: product, version, NULL-terminated. */
    v = MQTTClient_getVersionInfo();
    CHECK(strcmp(v[0].name, "Product name") == 0);
    CHECK(strcmp(v[1].name, "Version") == 0);
    for (; v->name; ++v)
        printf("version info: %s = %s\n", v->name, v->value);

    /* Global init validates its structure; a bad one is reported through the trace. */
    MQTTClient_setTraceCallback(tracer);
    MQTTClient_setTraceLevel(MQTTCLIENT_TRACE_MINIMUM);
    MQTTClient_global_init(&init);
    CHECK(traced == 0);
    init.struct_version = 9;
    MQTTClient_global_init(&init);
    MQTTClient_global_init(NULL);
    CHECK(traced == 2);
    MQTTClient_setTraceLevel(MQTTCLIENT_TRACE_FATAL);
    MQTTClient_global_init(NULL);
    CHECK(traced == 2);
    MQTTClient_setTraceCallback(NULL);

    /* freeMessage frees payload, properties and struct, and NULLs the pointer. */
    m = (MQTTClient_message*)MQTTClient_malloc(sizeof *m);
    {
        MQTTClient_message init_msg = MQTTClient_message_initializer;
        *m = init_msg;
    }
    m->payload = MQTTClient_malloc(5);
    memcpy(m->payload, "hello", 5);
    m->payloadlen = 5;
    p = str_prop(MQTTPROPERTY_CODE_USER_PROPERTY, "k", "v");
    CHECK(MQTTProperties_add(&m->properties, &p) == 0);
    MQTTClient_freeMessage(&m);
    CHECK(m == NULL);
    MQTTClient_freeMessage(&m);
    MQTTClient_freeMessage(NULL);

    /* MQTTResponse_free frees reason codes and properties. */
    r.reasonCodeCount = 2;
    r.reasonCodes = (enum MQTTReasonCodes*)malloc(2 * sizeof(enum MQTTReasonCodes));
    r.reasonCodes[0] = MQTTREASONCODE_GRANTED_QOS_1;
    r.reasonCodes[1] = MQTTREASONCODE_NOT_AUTHORIZED;
    r.properties = (MQTTProperties*)malloc(sizeof(MQTTProperties));
    memset(r.properties, 0, sizeof(MQTTProperties));
    p = str_prop(MQTTPROPERTY_CODE_REASON_STRING, "because", NULL);
    CHECK(MQTTProperties_add(r.properties, &p) == 0);
    MQTTResponse_free(r);
    MQTTClient_free(NULL);
}
#endif

int main(void)
{
    common_part();
#if defined(MQTTSYNC_H)
    printf("--- mqttsync only\n");
    mqttsync_part();
#endif
    printf("failures: %d\n", failures);
    return failures != 0;
}
