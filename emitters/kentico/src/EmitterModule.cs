using System;
using System.Runtime.CompilerServices;
using CMS;
using CMS.CustomTables;
using CMS.DataEngine;
using CMS.Ecommerce;
using CMS.EventLog;
using CMS.Membership;

[assembly: RegisterModule(typeof(CommerceSync.Emitter.EmitterModule))]

namespace CommerceSync.Emitter
{
    /// <summary>
    /// Turns changes of orders, customers and return requests into outbox rows
    /// (Kentico 13 object events: "Handling object events" and "Reference - Global system
    /// events", https://docs.kentico.com/13/custom-development/handling-global-events).
    ///
    /// The outbox row is written in the request that made the change, right after it.
    /// When the change runs inside a CMSTransactionScope (checkout does), the outbox insert
    /// joins that transaction; otherwise a crash between the two loses the event, and
    /// commerce-sync's change feed still finds the order (README.md, "Stores without
    /// webhooks"). Bulk operations (BulkInsert/BulkUpdate) raise no event here.
    /// </summary>
    public class EmitterModule : Module
    {
        public const string ReturnRequestClass = "CommerceSync.ReturnRequest";

        // Update.Before decides (the changed columns are known then), Update.After emits.
        private static readonly ConditionalWeakTable<BaseInfo, string> PendingOrderEvents =
            new ConditionalWeakTable<BaseInfo, string>();

        public EmitterModule() : base("CommerceSync.Emitter")
        {
        }

        protected override void OnInit()
        {
            base.OnInit();
            OrderInfo.TYPEINFO.Events.Insert.After += (sender, e) =>
                Emit(StoreEventTypes.OrderCreated, e.Object.Generalized.ObjectID);
            OrderInfo.TYPEINFO.Events.Update.Before += (sender, e) =>
            {
                PendingOrderEvents.Remove(e.Object);
                PendingOrderEvents.Add(e.Object, IsCancelling((OrderInfo)e.Object)
                    ? StoreEventTypes.OrderCancelled
                    : StoreEventTypes.OrderUpdated);
            };
            OrderInfo.TYPEINFO.Events.Update.After += (sender, e) =>
            {
                string eventType;
                if (PendingOrderEvents.TryGetValue(e.Object, out eventType))
                {
                    PendingOrderEvents.Remove(e.Object);
                    Emit(eventType, e.Object.Generalized.ObjectID);
                }
            };
            CustomerInfo.TYPEINFO.Events.Insert.After += (sender, e) =>
                Emit(StoreEventTypes.CustomerCreated, e.Object.Generalized.ObjectID);
            CustomerInfo.TYPEINFO.Events.Update.After += (sender, e) =>
                Emit(StoreEventTypes.CustomerUpdated, e.Object.Generalized.ObjectID);
            CustomTableItemEvents.Insert.After += (sender, e) =>
            {
                if (string.Equals(e.Item.CustomTableClassName, ReturnRequestClass, StringComparison.OrdinalIgnoreCase))
                {
                    Emit(StoreEventTypes.ReturnRequested, e.Item.ItemID);
                }
            };
        }

        private static bool IsCancelling(OrderInfo order)
        {
            string cancelled = EmitterSettings.CancelledStatusName;
            if (string.IsNullOrEmpty(cancelled) || !order.ItemChanged("OrderStatusID"))
            {
                return false;
            }
            OrderStatusInfo status = OrderStatusInfo.Provider.Get(order.OrderStatusID);
            return status != null && string.Equals(status.StatusName, cancelled, StringComparison.OrdinalIgnoreCase);
        }

        private static bool ByIntegrationUser()
        {
            string integration = EmitterSettings.IntegrationUserName;
            UserInfo user = MembershipContext.AuthenticatedUser;
            return !string.IsNullOrEmpty(integration) && user != null
                && string.Equals(user.UserName, integration, StringComparison.OrdinalIgnoreCase);
        }

        private static void Emit(string eventType, int objectId)
        {
            if (objectId <= 0 || ByIntegrationUser())
            {
                return;
            }
            try
            {
                Outbox.Enqueue(eventType, objectId);
            }
            catch (Exception ex)
            {
                // Never fail the shopper's change for a lost event: the change feed covers it.
                EventLogProvider.LogException("CommerceSync", "OUTBOX", ex);
            }
        }
    }
}
