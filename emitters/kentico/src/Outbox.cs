using System;
using System.Collections.Generic;
using CMS.CustomTables;

namespace CommerceSync.Emitter
{
    /// <summary>
    /// Events waiting to be delivered, one row each in the custom table
    /// CommerceSync.WebhookOutbox (columns in README.md). The body is built once, when the
    /// change happens, so every retry sends the same bytes under the same event id.
    /// </summary>
    internal static class Outbox
    {
        public const string ClassName = "CommerceSync.WebhookOutbox";

        public static void Enqueue(string eventType, int objectId)
        {
            DateTime now = DateTime.UtcNow;
            CustomTableItem item = CustomTableItem.New(ClassName);
            item.SetValue("EventID", StandardWebhook.NewMessageId());
            item.SetValue("EventType", eventType);
            item.SetValue("Body", StoreEventBody.Build(eventType, objectId, now));
            item.SetValue("Attempts", 0);
            item.SetValue("NextAttemptAt", now);
            item.Insert();
        }

        /// <summary>Undelivered rows whose next attempt is due, oldest first.</summary>
        public static IEnumerable<CustomTableItem> Due(int max)
        {
            return CustomTableItemProvider.GetItems(ClassName)
                .WhereNull("DeliveredAt")
                .WhereLessThan("Attempts", Backoff.MaxAttempts)
                .WhereLessOrEquals("NextAttemptAt", DateTime.UtcNow)
                .OrderBy("ItemID")
                .TopN(max);
        }

        public static void Delivered(CustomTableItem item)
        {
            item.SetValue("DeliveredAt", DateTime.UtcNow);
            item.SetValue("LastError", null);
            item.Update();
        }

        /// <summary>Records a failed attempt; returns how many there have been.</summary>
        public static int Failed(CustomTableItem item, string error)
        {
            int attempts = item.GetIntegerValue("Attempts", 0) + 1;
            item.SetValue("Attempts", attempts);
            item.SetValue("NextAttemptAt", DateTime.UtcNow + Backoff.After(attempts));
            item.SetValue("LastError", error.Length > 500 ? error.Substring(0, 500) : error);
            item.Update();
            return attempts;
        }
    }
}
