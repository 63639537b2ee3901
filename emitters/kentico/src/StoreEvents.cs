using System;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

// The parts of the emitter that need nothing from Kentico: the event body, the Standard
// Webhooks signature and the retry schedule. tests/unit/test_kentico_emitter.py compiles
// this file with Mono's C# compiler and checks its output with commerce-sync's own
// verifier (commerce_sync/intake/proofs.py) and event model (commerce_sync/intake/bodies.py).
namespace CommerceSync.Emitter
{
    /// <summary>
    /// The thin store events commerce-sync accepts at POST /webhooks/kentico
    /// (docs/project-contracts.md §1.2): a type, when it happened, and the object's id.
    /// </summary>
    public static class StoreEventTypes
    {
        public const string OrderCreated = "order.created";
        public const string OrderUpdated = "order.updated";
        public const string OrderCancelled = "order.cancelled";
        public const string ReturnRequested = "return.requested";
        public const string CustomerCreated = "customer.created";
        public const string CustomerUpdated = "customer.updated";

        public static readonly string[] All =
        {
            OrderCreated, OrderUpdated, OrderCancelled, ReturnRequested, CustomerCreated, CustomerUpdated,
        };
    }

    public static class StoreEventBody
    {
        /// <summary>
        /// {"type":"order.created","timestamp":"2026-12-05T08:00:00.000Z","data":{"id":"42","store":"kentico"}}
        /// The type is one of StoreEventTypes and the id an integer, so nothing needs escaping.
        /// </summary>
        public static string Build(string type, int objectId, DateTime occurredUtc)
        {
            if (Array.IndexOf(StoreEventTypes.All, type) < 0)
            {
                throw new ArgumentException("not a commerce-sync store event type: " + type, "type");
            }
            string timestamp = occurredUtc.ToUniversalTime()
                .ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
            return "{\"type\":\"" + type + "\",\"timestamp\":\"" + timestamp + "\",\"data\":{\"id\":\""
                + objectId.ToString(CultureInfo.InvariantCulture) + "\",\"store\":\"kentico\"}}";
        }
    }

    /// <summary>
    /// Standard Webhooks signing (https://www.standardwebhooks.com/, "Signature scheme"):
    /// webhook-signature is "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)),
    /// where the key is the base64 part of the "whsec_..." secret. The id stays the same on
    /// every retry (the receiver drops repeats by it); the timestamp is that of the attempt,
    /// since the receiver refuses one more than five minutes off.
    /// </summary>
    public static class StandardWebhook
    {
        public const string SecretPrefix = "whsec_";

        public static string NewMessageId()
        {
            return "evt_" + Guid.NewGuid().ToString("N");
        }

        public static long UnixSeconds(DateTime utc)
        {
            return (long)(utc.ToUniversalTime() - new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)).TotalSeconds;
        }

        public static byte[] SecretKey(string secret)
        {
            string encoded = secret.StartsWith(SecretPrefix, StringComparison.Ordinal)
                ? secret.Substring(SecretPrefix.Length)
                : secret;
            return Convert.FromBase64String(encoded);
        }

        public static string Sign(string secret, string messageId, long timestamp, string body)
        {
            string signed = messageId + "." + timestamp.ToString(CultureInfo.InvariantCulture) + "." + body;
            using (var hmac = new HMACSHA256(SecretKey(secret)))
            {
                return "v1," + Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes(signed)));
            }
        }
    }

    /// <summary>When a failed delivery is tried again: 30 s, doubling, at most 6 h apart.</summary>
    public static class Backoff
    {
        /// <summary>After this many failed attempts an event is left for an administrator
        /// (its LastError says why); about two days of tries.</summary>
        public const int MaxAttempts = 16;

        public static TimeSpan After(int failedAttempts)
        {
            double seconds = 30 * Math.Pow(2, Math.Max(0, failedAttempts - 1));
            return TimeSpan.FromSeconds(Math.Min(seconds, 6 * 3600));
        }
    }
}
