using System;
using System.Globalization;
using System.Net.Http;
using System.Text;
using CMS.CustomTables;
using CMS.EventLog;
using CMS.Scheduler;

namespace CommerceSync.Emitter
{
    /// <summary>
    /// A scheduled task (every minute; README.md) that posts due outbox rows to
    /// commerce-sync as Standard Webhooks. Any 2xx is delivered (202 accepted, 200 a repeat
    /// the receiver already has); anything else, or no answer, is tried again after
    /// Backoff.After(attempts), the same id and body, a fresh timestamp and signature.
    /// </summary>
    public class WebhookDeliveryTask : ITask
    {
        private const int BatchSize = 100;
        private static readonly HttpClient Http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };

        public string Execute(TaskInfo task)
        {
            string url = EmitterSettings.Url;
            string secret = EmitterSettings.Secret;
            if (string.IsNullOrEmpty(url) || string.IsNullOrEmpty(secret))
            {
                return "CommerceSyncWebhookUrl or CommerceSyncWebhookSecret is not set";
            }
            int delivered = 0, failed = 0;
            foreach (CustomTableItem item in Outbox.Due(BatchSize))
            {
                string error = Post(url, secret, item);
                if (error == null)
                {
                    Outbox.Delivered(item);
                    delivered++;
                    continue;
                }
                failed++;
                if (Outbox.Failed(item, error) >= Backoff.MaxAttempts)
                {
                    EventLogProvider.LogEvent(EventType.ERROR, "CommerceSync", "WEBHOOKGAVEUP",
                        "Event " + item.GetStringValue("EventID", "") + " not delivered: " + error);
                }
            }
            return delivered + " delivered, " + failed + " to retry";
        }

        /// <summary>Null when delivered, else why not.</summary>
        private static string Post(string url, string secret, CustomTableItem item)
        {
            string id = item.GetStringValue("EventID", "");
            string body = item.GetStringValue("Body", "");
            long timestamp = StandardWebhook.UnixSeconds(DateTime.UtcNow);
            using (var request = new HttpRequestMessage(HttpMethod.Post, url))
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
                request.Headers.Add("webhook-id", id);
                request.Headers.Add("webhook-timestamp", timestamp.ToString(CultureInfo.InvariantCulture));
                request.Headers.Add("webhook-signature", StandardWebhook.Sign(secret, id, timestamp, body));
                try
                {
                    using (HttpResponseMessage response = Http.SendAsync(request).GetAwaiter().GetResult())
                    {
                        return response.IsSuccessStatusCode ? null : "HTTP " + (int)response.StatusCode;
                    }
                }
                catch (Exception ex)
                {
                    return ex.GetType().Name + ": " + ex.Message;
                }
            }
        }
    }
}
